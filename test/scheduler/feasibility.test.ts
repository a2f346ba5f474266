import { describe, expect, it } from 'vitest';
import { schedule } from '../../src/scheduler/index.js';
import type { AgentSnapshot, DesiredGroup } from '../../src/scheduler/index.js';
import { GiB, mockAgent, mockConstraint, mockGroup, mockInput, mockResources, mockTask } from './mocks.js';

/** placeOne schedules a single-task group and returns the agent it landed on, or the unplaced causes. */
function placeOne(agents: AgentSnapshot[], g: DesiredGroup, others: ReturnType<typeof mockTask>[] = []) {
  const plan = schedule(mockInput({ agents, groups: [g], actual: others }));
  return { agent: plan.create[0]?.agent, causes: plan.unplaced[0]?.causes, reason: plan.unplaced[0]?.reason };
}

const other = mockGroup({ plan: 'other', group: 'db' });

describe('feasibility filters', () => {
  const a = (over: Partial<AgentSnapshot> = {}) => mockAgent({ name: 'a1', ...over });
  const cases: Array<{ name: string; agent: AgentSnapshot; group: DesiredGroup; cause?: string; others?: ReturnType<typeof mockTask>[] }> = [
    { name: 'fits', agent: a(), group: mockGroup() },
    { name: 'cpus short', agent: a(), group: mockGroup({ resources: mockResources({ cpus: 9 }) }), cause: 'cpus' },
    { name: 'mem short', agent: a(), group: mockGroup({ resources: mockResources({ mem: 17 * GiB }) }), cause: 'mem' },
    { name: 'disk short', agent: a(), group: mockGroup({ resources: mockResources({ disk: 101 * GiB }) }), cause: 'disk' },
    { name: 'gpus short', agent: a(), group: mockGroup({ resources: mockResources({ gpus: 1 }) }), cause: 'gpus' },
    {
      name: 'gpus fit',
      agent: a({ capacity: { cpus: 8, mem: GiB, disk: 0, gpus: 2, scalars: {} } }),
      group: mockGroup({ resources: mockResources({ gpus: 2 }) }),
    },
    { name: 'custom scalar missing on agent', agent: a(), group: mockGroup({ resources: mockResources({ scalars: { ssd: 1 } }) }), cause: 'ssd' },
    {
      name: 'custom scalar short',
      agent: a({ capacity: { cpus: 8, mem: GiB, disk: 0, gpus: 0, scalars: { ssd: 10 } } }),
      group: mockGroup({ resources: mockResources({ scalars: { ssd: 11 } }) }),
      cause: 'ssd',
    },
    {
      name: 'custom scalar fits',
      agent: a({ capacity: { cpus: 8, mem: GiB, disk: 0, gpus: 0, scalars: { ssd: 10 } } }),
      group: mockGroup({ resources: mockResources({ scalars: { ssd: 10 } }) }),
    },
    { name: 'reserved counts', agent: a({ reserved: { cpus: 7.5 } }), group: mockGroup(), cause: 'cpus' },
    {
      name: 'used by other plans counts',
      agent: a(),
      group: mockGroup({ resources: mockResources({ mem: 10 * GiB }) }),
      others: [mockTask(other, 0, 'a1', { resources: mockResources({ mem: 8 * GiB }) })],
      cause: 'mem',
    },
    {
      name: 'port in use',
      agent: a(),
      group: mockGroup({ resources: mockResources({ ports: [80] }) }),
      others: [mockTask(other, 0, 'a1', { resources: mockResources({ ports: [80] }) })],
      cause: 'port 80',
    },
    {
      name: 'other port free',
      agent: a(),
      group: mockGroup({ resources: mockResources({ ports: [81] }) }),
      others: [mockTask(other, 0, 'a1', { resources: mockResources({ ports: [80] }) })],
    },
    { name: 'driver missing', agent: a({ drivers: ['process'] }), group: mockGroup({ driver: 'docker' }), cause: 'driver docker' },
    { name: 'agent lost', agent: a({ state: 'lost' }), group: mockGroup(), cause: 'agent not ready' },
    { name: 'agent down', agent: a({ state: 'down' }), group: mockGroup(), cause: 'agent not ready' },
    { name: 'agent draining', agent: a({ state: 'draining' }), group: mockGroup(), cause: 'agent not ready' },
    { name: 'idc in placement', agent: a(), group: mockGroup({ placement: { idcs: ['bj1', 'sh2'] } }) },
    { name: 'idc not in placement', agent: a(), group: mockGroup({ placement: { idcs: ['sh2'] } }), cause: 'idc not in (sh2)' },
    { name: 'cluster placement', agent: a(), group: mockGroup({ placement: { cluster: 'bj1-a' } }) },
    { name: 'cluster placement miss', agent: a(), group: mockGroup({ placement: { cluster: 'bj1-b' } }), cause: 'cluster != bj1-b' },
    ...(
      [
        ['==', 'r1', true],
        ['==', 'r2', false],
        ['!=', 'r1', false],
        ['!=', 'r9', true],
        ['in', ['r1', 'r2'], true],
        ['not in', ['r1'], false],
        ['~', '^r\\d$', true],
        ['~', '^x', false],
      ] as const
    ).map(([op, value, ok]) => {
      const c = mockConstraint('rack', op, typeof value === 'string' ? value : [...value]);
      return { name: `constraint ${c.source}`, agent: a({ attributes: { rack: 'r1', cores: '48' } }), group: mockGroup({ constraints: [c] }), ...(ok ? {} : { cause: `constraint ${c.source}` }) };
    }),
    ...(
      [
        ['>', '9', true],
        ['>=', '49', false],
        ['<', '100', true],
        ['<=', '47', false],
      ] as const
    ).map(([op, value, ok]) => {
      const c = mockConstraint('cores', op, value);
      return { name: `numeric constraint ${c.source}`, agent: a({ attributes: { cores: '48' } }), group: mockGroup({ constraints: [c] }), ...(ok ? {} : { cause: `constraint ${c.source}` }) };
    }),
    {
      name: 'maxPerAgent reached by a kept task',
      agent: a(),
      group: mockGroup({ count: 2, maxPerAgent: 1 }),
      cause: 'maxPerAgent 1',
    },
  ];

  it.each(cases)('$name', ({ agent, group, cause, others }) => {
    if (group.maxPerAgent !== undefined) {
      // one task of the group already runs on the only agent; the second index must not join it
      const plan = schedule(mockInput({ agents: [agent], groups: [group], actual: [mockTask(group, 0, agent.name)] }));
      expect(plan.unplaced.map((u) => Object.keys(u.causes))).toEqual([[cause]]);
      return;
    }
    const got = placeOne([agent], group, others);
    if (cause === undefined) expect(got.agent).toBe('a1');
    else expect(got.causes).toEqual({ [cause]: 1 });
  });

  it('fits ten 0.1-cpu tasks in one cpu', () => {
    const agent = mockAgent({ name: 'a1', capacity: { cpus: 1, mem: GiB, disk: 0, gpus: 0, scalars: {} } });
    const g = mockGroup({ count: 11, resources: mockResources({ cpus: 0.1 }) });
    const plan = schedule(mockInput({ agents: [agent], groups: [g] }));
    expect(plan.create).toHaveLength(10);
    expect(plan.unplaced.map((u) => u.task)).toHaveLength(1);
  });

  it('commits placements immediately: a second task never over-commits', () => {
    const agent = mockAgent({ name: 'a1' });
    const g = mockGroup({ count: 3, resources: mockResources({ cpus: 3 }) });
    const plan = schedule(mockInput({ agents: [agent], groups: [g] }));
    expect(plan.create).toHaveLength(2);
    expect(plan.unplaced[0]?.causes).toEqual({ cpus: 1 });
  });

  it('keeps static ports of the same group apart', () => {
    const agents = [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' })];
    const g = mockGroup({ count: 3, resources: mockResources({ cpus: 0.1, ports: [80] }) });
    const plan = schedule(mockInput({ agents, groups: [g] }));
    expect(new Set(plan.create.map((p) => p.agent))).toEqual(new Set(['a1', 'a2']));
    expect(plan.unplaced[0]?.causes).toEqual({ 'port 80': 2 });
  });

  it('honors maxPerAgent across new placements', () => {
    const agents = [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' })];
    const g = mockGroup({ count: 5, maxPerAgent: 2, resources: mockResources({ cpus: 0.1 }) });
    const plan = schedule(mockInput({ agents, groups: [g] }));
    expect(plan.create.filter((p) => p.agent === 'a1')).toHaveLength(2);
    expect(plan.create.filter((p) => p.agent === 'a2')).toHaveLength(2);
    expect(plan.unplaced[0]?.reason).toBe('no agent fits: maxPerAgent 2: 2 agents at limit');
  });
});

describe('unplaced reasons', () => {
  it('counts each agent under its first failing filter, most common first', () => {
    const agents: AgentSnapshot[] = [];
    for (let i = 0; i < 7; i++) agents.push(mockAgent({ name: `m${i}`, attributes: { rack: 'r1' }, capacity: { cpus: 8, mem: GiB, disk: 0, gpus: 0, scalars: {} } }));
    for (let i = 0; i < 3; i++) agents.push(mockAgent({ name: `r${i}`, attributes: { rack: 'r9' } }));
    for (let i = 0; i < 2; i++) agents.push(mockAgent({ name: `d${i}`, drivers: ['process'], attributes: { rack: 'r9' } }));
    agents.push(mockAgent({ name: 'n0', state: 'lost', drivers: [] }));
    const g = mockGroup({ driver: 'docker', resources: mockResources({ cpus: 1, mem: 2 * GiB }), constraints: [mockConstraint('rack', '!=', 'r9')] });
    const plan = schedule(mockInput({ agents, groups: [g] }));
    expect(plan.create).toEqual([]);
    expect(plan.unplaced).toHaveLength(1);
    const u = plan.unplaced[0]!;
    expect(u).toMatchObject({ task: 'p/web/0', plan: 'p', group: 'web', project: 'acme' });
    expect(u.reason).toBe('no agent fits: mem: 7 agents short; constraint rack != r9: 3 agents; driver docker: 2 agents lack it; agent not ready: 1');
    expect(u.causes).toEqual({ mem: 7, 'constraint rack != r9': 3, 'driver docker': 2, 'agent not ready': 1 });
  });

  it('says so when there are no agents at all', () => {
    const plan = schedule(mockInput({ agents: [], groups: [mockGroup({ count: 2 })] }));
    expect(plan.unplaced.map((u) => u.reason)).toEqual(['no agents in the inventory', 'no agents in the inventory']);
    expect(plan.unplaced[0]?.causes).toEqual({});
  });

  it('uses singular words for one agent', () => {
    const plan = schedule(mockInput({ agents: [mockAgent({ name: 'a1', drivers: [] })], groups: [mockGroup()] }));
    expect(plan.unplaced[0]?.reason).toBe('no agent fits: driver process: 1 agent lacks it');
  });
});
