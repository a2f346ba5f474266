import { describe, expect, it } from 'vitest';
import { schedule } from '../../src/scheduler/index.js';
import type { ActualTask, AgentSnapshot, DesiredGroup, SchedulePlan, TaskState } from '../../src/scheduler/index.js';
import { GiB, mockAgent, mockConstraint, mockGroup, mockInput, mockResources, mockTask } from './mocks.js';

/** summary reduces a plan to comparable strings: `task@agent:reason`. */
function summary(plan: SchedulePlan) {
  return {
    create: plan.create.map((p) => `${p.task}@${p.agent}:${p.reason}`).sort(),
    stop: plan.stop.map((s) => `${s.task.task}@${s.task.agent}:${s.reason}`).sort(),
    keep: plan.keep.map((t) => `${t.task}@${t.agent}`).sort(),
    unplaced: plan.unplaced.map((u) => u.task).sort(),
    changes: plan.changes,
  };
}

const agents = [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' })];
const g = mockGroup({ count: 2, resources: mockResources({ cpus: 1, mem: GiB }) });
const g2 = mockGroup({ ...g, specHash: 'h2' });

interface Case {
  name: string;
  agents?: AgentSnapshot[];
  groups: DesiredGroup[];
  actual?: ActualTask[];
  plans?: string[];
  want: Partial<ReturnType<typeof summary>>;
}

const dead: TaskState[] = ['exited', 'failed', 'finished', 'stopped', 'lost', 'unknown'];

const cases: Case[] = [
  {
    name: 'new tasks',
    groups: [g],
    want: { stop: [], keep: [], changes: { create: 2, destroy: 0, update: 0 } },
  },
  {
    name: 'keep running and pending tasks',
    groups: [g],
    actual: [mockTask(g, 0, 'a1'), mockTask(g, 1, 'a2', { state: 'pending' })],
    want: { create: [], stop: [], keep: ['p/web/0@a1', 'p/web/1@a2'], changes: { create: 0, destroy: 0, update: 0 } },
  },
  {
    name: 'scale up adds the missing indices',
    groups: [{ ...g, count: 3 }],
    actual: [mockTask(g, 0, 'a1'), mockTask(g, 1, 'a2')],
    want: { keep: ['p/web/0@a1', 'p/web/1@a2'], changes: { create: 1, destroy: 0, update: 0 } },
  },
  {
    name: 'scale down stops indices ≥ count',
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a1'), mockTask(g, 1, 'a2'), mockTask(g, 2, 'a2')],
    want: { create: [], keep: ['p/web/0@a1'], stop: ['p/web/1@a2:scaled-down', 'p/web/2@a2:scaled-down'], changes: { create: 0, destroy: 2, update: 0 } },
  },
  {
    name: 'update in place on the same agent',
    groups: [g2],
    actual: [mockTask(g, 0, 'a1'), mockTask(g, 1, 'a2')],
    want: {
      create: ['p/web/0@a1:update', 'p/web/1@a2:update'],
      stop: ['p/web/0@a1:update', 'p/web/1@a2:update'],
      keep: [],
      changes: { create: 0, destroy: 0, update: 2 },
    },
  },
  {
    name: 'update moves when the new version no longer fits the old agent',
    groups: [{ ...g2, count: 1, resources: mockResources({ cpus: 6 }) }],
    agents: [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' })],
    actual: [
      mockTask(g, 0, 'a1'),
      mockTask(mockGroup({ plan: 'other' }), 0, 'a1', { resources: mockResources({ cpus: 4 }) }),
    ],
    want: { create: ['p/web/0@a2:update'], stop: ['p/web/0@a1:update'], changes: { create: 0, destroy: 0, update: 1 } },
  },
  {
    name: 'an update that fits nowhere keeps the old version',
    groups: [{ ...g2, count: 1, resources: mockResources({ cpus: 99 }) }],
    actual: [mockTask(g, 0, 'a1')],
    want: { create: [], stop: [], keep: ['p/web/0@a1'], unplaced: ['p/web/0'], changes: { create: 0, destroy: 0, update: 0 } },
  },
  ...dead.map((state) => ({
    name: `restart a ${state} task in place`,
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a2', { state })],
    want: { create: ['p/web/0@a2:restart'], stop: [], keep: [], changes: { create: 1, destroy: 0, update: 0 } },
  })),
  {
    name: 'restart: on-failure leaves a task that finished with exit 0',
    groups: [{ ...g, count: 1, restart: 'on-failure' as const }],
    actual: [mockTask(g, 0, 'a2', { state: 'finished' })],
    want: { create: [], stop: [], keep: ['p/web/0@a2'], changes: { create: 0, destroy: 0, update: 0 } },
  },
  {
    name: 'restart: on-failure restarts a failed task',
    groups: [{ ...g, count: 1, restart: 'on-failure' as const }],
    actual: [mockTask(g, 0, 'a2', { state: 'failed' })],
    want: { create: ['p/web/0@a2:restart'], stop: [], keep: [], changes: { create: 1, destroy: 0, update: 0 } },
  },
  {
    name: 'restart: never keeps a failed task as it is',
    groups: [{ ...g, count: 1, restart: 'never' as const }],
    actual: [mockTask(g, 0, 'a2', { state: 'failed' })],
    want: { create: [], stop: [], keep: ['p/web/0@a2'], changes: { create: 0, destroy: 0, update: 0 } },
  },
  {
    name: 'restart held by the backoff: the dead task is kept as it is',
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a2', { state: 'failed', restartHeld: true })],
    want: { create: [], stop: [], keep: ['p/web/0@a2'], changes: { create: 0, destroy: 0, update: 0 } },
  },
  {
    name: 'restart held by the backoff on a draining agent: not moved either',
    agents: [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2', state: 'draining' })],
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a2', { state: 'failed', restartHeld: true })],
    want: { create: [], stop: [], keep: ['p/web/0@a2'], changes: { create: 0, destroy: 0, update: 0 } },
  },
  {
    name: 'restart held by the backoff does not hold back an update (a new spec starts at once)',
    groups: [{ ...g2, count: 1 }],
    actual: [mockTask(g, 0, 'a2', { state: 'failed', restartHeld: true })],
    want: { create: ['p/web/0@a2:update'], stop: ['p/web/0@a2:update'], keep: [], changes: { create: 0, destroy: 0, update: 1 } },
  },
  {
    name: 'restart held by the backoff does not keep a task on a lost agent',
    agents: [mockAgent({ name: 'a1', state: 'lost' }), mockAgent({ name: 'a2' })],
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a1', { state: 'failed', restartHeld: true })],
    want: { create: ['p/web/0@a2:reschedule'], stop: ['p/web/0@a1:reschedule'], keep: [], changes: { create: 1, destroy: 0, update: 0 } },
  },
  {
    name: 'restart elsewhere when the agent is full now',
    groups: [{ ...g, count: 1, resources: mockResources({ cpus: 4 }) }],
    actual: [
      mockTask(g, 0, 'a1', { state: 'failed', resources: mockResources({ cpus: 4 }) }),
      mockTask(mockGroup({ plan: 'other' }), 0, 'a1', { resources: mockResources({ cpus: 6 }) }),
    ],
    want: { create: ['p/web/0@a2:reschedule'], stop: ['p/web/0@a1:reschedule'], changes: { create: 1, destroy: 0, update: 0 } },
  },
  ...(['lost', 'down'] as const).map((state) => ({
    name: `reschedule from a ${state} agent`,
    agents: [mockAgent({ name: 'a1', state }), mockAgent({ name: 'a2' })],
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a1')],
    want: { create: ['p/web/0@a2:reschedule'], stop: ['p/web/0@a1:reschedule'], keep: [], changes: { create: 1, destroy: 0, update: 0 } },
  })),
  {
    name: 'reschedule from an agent missing from the inventory',
    agents: [mockAgent({ name: 'a1' })],
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'gone')],
    want: { create: ['p/web/0@a1:reschedule'], stop: ['p/web/0@gone:reschedule'], changes: { create: 1, destroy: 0, update: 0 } },
  },
  {
    name: 'a reschedule that fits nowhere stops nothing',
    agents: [mockAgent({ name: 'a1', state: 'lost' })],
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a1')],
    want: { create: [], stop: [], keep: [], unplaced: ['p/web/0'] },
  },
  {
    name: 'keep a task on a draining agent, place nothing new there',
    agents: [mockAgent({ name: 'a1', state: 'draining' }), mockAgent({ name: 'a2' })],
    groups: [g],
    actual: [mockTask(g, 0, 'a1')],
    want: { create: ['p/web/1@a2:new'], keep: ['p/web/0@a1'], stop: [] },
  },
  {
    name: 'a dead task on a draining agent moves',
    agents: [mockAgent({ name: 'a1', state: 'draining' }), mockAgent({ name: 'a2' })],
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a1', { state: 'exited' })],
    want: { create: ['p/web/0@a2:reschedule'], stop: ['p/web/0@a1:reschedule'] },
  },
  {
    name: 'group removed from the plan',
    groups: [mockGroup({ group: 'api', count: 0 })],
    actual: [mockTask(g, 0, 'a1'), mockTask(g, 1, 'a2')],
    want: { create: [], stop: ['p/web/0@a1:removed', 'p/web/1@a2:removed'], changes: { create: 0, destroy: 2, update: 0 } },
  },
  {
    name: 'destroy: plan listed with no groups',
    groups: [],
    plans: ['p'],
    actual: [mockTask(g, 0, 'a1'), mockTask(mockGroup({ group: 'api' }), 0, 'a2', { state: 'exited' })],
    want: { create: [], keep: [], stop: ['p/api/0@a2:removed', 'p/web/0@a1:removed'], changes: { create: 0, destroy: 2, update: 0 } },
  },
  {
    name: 'other plans are untouched and not listed',
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(mockGroup({ plan: 'q' }), 0, 'a1'), mockTask(mockGroup({ plan: 'q', group: 'gone' }), 5, 'a1', { state: 'failed' })],
    want: { create: ['p/web/0@a1:new'], stop: [], keep: [], changes: { create: 1, destroy: 0, update: 0 } },
  },
  {
    name: 'duplicate records of one id: the live one is kept, the others stopped',
    groups: [{ ...g, count: 1 }],
    actual: [mockTask(g, 0, 'a1', { state: 'exited' }), mockTask(g, 0, 'a2')],
    want: { create: [], keep: ['p/web/0@a2'], stop: ['p/web/0@a1:scaled-down'] },
  },
];

describe('reconcile', () => {
  it.each(cases)('$name', (c) => {
    const plan = schedule(mockInput({ agents: c.agents ?? agents, groups: c.groups, actual: c.actual ?? [], ...(c.plans ? { plans: c.plans } : {}) }));
    expect(summary(plan)).toMatchObject(c.want);
  });

  it('an update prefers the old agent even when binpack would choose another', () => {
    const busy = mockTask(mockGroup({ plan: 'other' }), 0, 'a2', { resources: mockResources({ cpus: 6 }) });
    const plan = schedule(mockInput({ agents, groups: [{ ...g2, count: 1 }], actual: [mockTask(g, 0, 'a1'), busy] }));
    expect(summary(plan).create).toEqual(['p/web/0@a1:update']);
  });

  it('a restart keeps its agent even when other tasks are placed first', () => {
    const one = [mockAgent({ name: 'a1', capacity: { cpus: 2, mem: 4 * GiB, disk: 0, gpus: 0, scalars: {} } }), mockAgent({ name: 'a2' })];
    const big = mockGroup({ group: 'big', count: 1, resources: mockResources({ cpus: 2, mem: GiB }) });
    const small = mockGroup({ group: 'small', count: 1, resources: mockResources({ cpus: 1, mem: GiB }) });
    const plan = schedule(mockInput({ agents: one, groups: [big, small], actual: [mockTask(small, 0, 'a1', { state: 'failed' })] }));
    expect(summary(plan).create).toEqual(['p/big/0@a2:new', 'p/small/0@a1:restart']);
  });
});

describe('everyAgent', () => {
  const daemon = mockGroup({ group: 'agentd', everyAgent: true, count: 0, resources: mockResources({ cpus: 1, mem: GiB }) });
  const four = [
    mockAgent({ name: 'a1' }),
    mockAgent({ name: 'a2', attributes: { rack: 'r9' } }),
    mockAgent({ name: 'a3', state: 'draining' }),
    mockAgent({ name: 'a4', capacity: { cpus: 0.5, mem: GiB, disk: 0, gpus: 0, scalars: {} } }),
    mockAgent({ name: 'a5' }),
  ];

  it('places one task per feasible agent with the lowest indices, silently skipping agents it cannot fit', () => {
    const plan = schedule(mockInput({ agents: four, groups: [daemon] }));
    expect(summary(plan)).toMatchObject({
      create: ['p/agentd/0@a1:new', 'p/agentd/1@a2:new', 'p/agentd/2@a5:new'],
      unplaced: [],
      changes: { create: 3, destroy: 0, update: 0 },
    });
  });

  it('honors constraints', () => {
    const plan = schedule(mockInput({ agents: four, groups: [{ ...daemon, constraints: [mockConstraint('rack', '!=', 'r9')] }] }));
    expect(summary(plan).create).toEqual(['p/agentd/0@a1:new', 'p/agentd/1@a5:new']);
  });

  it('existing tasks keep their index and agent; new agents take the lowest free index', () => {
    const actual = [mockTask(daemon, 1, 'a2'), mockTask(daemon, 3, 'a3'), mockTask(daemon, 4, 'gone')];
    const plan = schedule(mockInput({ agents: four, groups: [daemon], actual }));
    expect(summary(plan)).toMatchObject({
      keep: ['p/agentd/1@a2', 'p/agentd/3@a3'],
      create: ['p/agentd/0@a1:new', 'p/agentd/2@a5:new'],
      stop: ['p/agentd/4@gone:scaled-down'],
      changes: { create: 2, destroy: 1, update: 0 },
    });
  });

  it('stops tasks on agents that no longer match and updates in place', () => {
    const d2 = { ...daemon, specHash: 'h2', constraints: [mockConstraint('rack', '!=', 'r9')] };
    const actual = [mockTask(daemon, 0, 'a1'), mockTask(daemon, 1, 'a2'), mockTask(daemon, 2, 'a5', { state: 'failed' })];
    const plan = schedule(mockInput({ agents: four, groups: [d2], actual }));
    expect(summary(plan)).toMatchObject({
      create: ['p/agentd/0@a1:update', 'p/agentd/2@a5:update'],
      stop: ['p/agentd/0@a1:update', 'p/agentd/1@a2:scaled-down', 'p/agentd/2@a5:update'],
      changes: { create: 0, destroy: 1, update: 2 },
    });
  });
});
