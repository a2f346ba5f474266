import { describe, expect, test } from 'vitest';
import { movedOffDraining } from '../../src/control/drain-moves.js';
import { drainMarkOf, snapshotOf } from '../../src/control/snapshot.js';
import { schedule } from '../../src/scheduler/index.js';
import type { ActualTask, AgentSnapshot, DesiredGroup } from '../../src/scheduler/types.js';
import type { InventorySpec } from '../../src/spec/model.js';
import { workFrom } from '../helpers/state.js';
import type { StateData } from '../../src/state/types.js';

const res = { cpus: 1, mem: 1024, disk: 0, gpus: 0, scalars: {}, ports: [] };
const agent = (name: string, state: AgentSnapshot['state']): AgentSnapshot => ({
  name, idc: 'i', cluster: 'c', state, capacity: { cpus: 4, mem: 1 << 20, disk: 0, gpus: 0, scalars: {} }, attributes: {}, drivers: ['process'],
});
const group: DesiredGroup = {
  plan: 'p', group: 'g', project: 'x', kind: 'process', driver: 'process', count: 2, everyAgent: false, resources: res,
  constraints: [], specHash: 'h', strategy: 'binpack',
};
const actual = (i: number, on: string): ActualTask => ({ task: `p/g/${i}`, plan: 'p', group: 'g', project: 'x', agent: on, driver: 'process', specHash: 'h', state: 'running', resources: res });

describe('drain', () => {
  test('live tasks on a draining agent are rescheduled elsewhere, the old copies stopped', () => {
    const agents = [agent('a', 'draining'), agent('b', 'ready')];
    const tasks = [actual(0, 'a'), actual(1, 'b')];
    const moved = movedOffDraining(tasks, agents, [group]);
    expect(moved.map((t) => t.state)).toEqual(['lost', 'running']);
    const plan = schedule({ agents, groups: [group], actual: moved, plans: ['p'], seed: 1 });
    expect(plan.create.map((c) => [c.task, c.agent, c.reason])).toEqual([['p/g/0', 'b', 'reschedule']]);
    expect(plan.stop.map((s) => [s.task.task, s.task.agent, s.reason])).toEqual([['p/g/0', 'a', 'reschedule']]);
  });

  test('with nowhere else to go the task stays and is reported unplaced; everyAgent tasks stay', () => {
    const agents = [agent('a', 'draining')];
    const plan = schedule({ agents, groups: [group], actual: movedOffDraining([actual(0, 'a')], agents, [group]), plans: ['p'], seed: 1 });
    expect(plan.stop).toEqual([]);
    expect(plan.unplaced.map((u) => u.task)).toContain('p/g/0');
    expect(movedOffDraining([actual(0, 'a')], agents, [{ ...group, everyAgent: true }])[0]!.state).toBe('running');
  });

  test('the marker survives observation and makes the snapshot say draining', async () => {
    expect(drainMarkOf({ draining: true, drainingSince: 't' } as never)).toEqual({ draining: true, drainingSince: 't' });
    expect(drainMarkOf(undefined)).toEqual({});
    const inv = { file: 'x', idcs: [], projects: {}, agents: [{ name: 'a', idc: 'i', cluster: 'c', transport: { kind: 'local' }, resources: { cpus: 2 }, attributes: {} }] } as unknown as InventorySpec;
    const data: StateData = {
      version: 1, plans: {}, events: [], tasks: {},
      agents: { a: { name: 'a', idc: 'i', cluster: 'c', state: 'ready', resources: { cpus: 2, mem: 1, disk: 0, gpus: 0, scalars: {} }, attributes: {}, drivers: ['process'], draining: true } },
    };
    const work = await workFrom(data);
    expect(snapshotOf(inv, work, { offline: false }).agents[0]!.state).toBe('draining');
    expect(snapshotOf(inv, work, { offline: true }).agents[0]!.state).toBe('draining');
    work.agents.put({ ...work.agents.get('a')!, state: 'lost' });
    expect(snapshotOf(inv, work, { offline: false }).agents[0]!.state).toBe('lost');
  });
});
