/**
 * observe() with tasks of other states: a reported task whose state id is not ours is foreign (listed
 * on the agent, its resources taken from the free capacity, never recorded, adopted, or a stray); a
 * legacy task without a state id is ours only when our state records it on that agent.
 */
import { describe, expect, it } from 'vitest';
import { AgentPool } from '../../src/control/agents.js';
import { lessForeign, observe, refuseForeign, snapshotOf, type StrayTask } from '../../src/control/snapshot.js';
import type { AgentRegistration, TaskStatus } from '../../src/protocol/messages.js';
import type { AgentSpec, InventorySpec } from '../../src/spec/model.js';
import { MemoryBackend } from '../../src/state/memory-backend.js';
import type { TaskRecord } from '../../src/state/types.js';
import { StateWork, type TableWork } from '../../src/state/work.js';
import type { ExecutorClient } from '../../src/transport/client.js';
import { FactoryError } from '../../src/errors.js';

const OURS = 'st-0000000000aa';
const THEIRS = 'st-0000000000bb';
const NOW = '2026-01-01T00:00:00.000Z';
const GiB = 1024 ** 3;

function agentSpec(name: string): AgentSpec {
  return { name, idc: 'dc', cluster: 'c', transport: { kind: 'local' }, resources: {}, attributes: {} } as unknown as AgentSpec;
}

function inventory(names: string[]): InventorySpec {
  return { agents: names.map(agentSpec), settings: {}, projects: {} } as unknown as InventorySpec;
}

function status(task: string, over: Partial<TaskStatus> = {}): TaskStatus {
  const [plan = 'p', group = 'g'] = task.split('/');
  return {
    task,
    driver: 'process',
    state: 'running',
    specHash: 'h1',
    labels: { plan, group, project: 'demo' },
    pid: 100,
    resources: { cpus: 1, mem: GiB, disk: 0, gpus: 0, scalars: {}, ports: [] },
    ...over,
  };
}

function registration(tasks: TaskStatus[]): AgentRegistration {
  return {
    executorVersion: 'test',
    protocol: 1,
    hostname: 'h',
    resources: { cpus: 4, mem: 8 * GiB, disk: 100 * GiB, gpus: 0, scalars: {} },
    attributes: {},
    drivers: ['process'],
    limits: 'none',
    workDir: '/tmp/x',
    tasks,
  };
}

/** poolWith builds a pool as connect() leaves it: each agent reached, with what it registered. */
function poolWith(reports: Record<string, TaskStatus[]>, stateId = OURS): AgentPool {
  const pool = AgentPool.lentPool({ stateDir: '/tmp/unused', stateId });
  for (const [name, tasks] of Object.entries(reports)) {
    pool.connected.set(name, { spec: agentSpec(name), client: undefined as unknown as ExecutorClient, registration: registration(tasks) });
  }
  return pool;
}

function record(task: string, agent: string, over: Partial<TaskRecord> = {}): TaskRecord {
  const [plan = 'p', group = 'g'] = task.split('/');
  return {
    task, plan, group, project: 'demo', agent, driver: 'process', specHash: 'h1', state: 'running',
    resources: { cpus: 1, mem: GiB, disk: 0, gpus: 0, scalars: {}, ports: [] }, pid: 100, updatedAt: NOW, ...over,
  };
}

/** table shows a table of a unit of work as a plain object (reads, puts, Object.keys). */
function table<T extends 'tasks' | 'agents'>(t: TableWork<T>): Record<string, ReturnType<TableWork<T>['get']> & object> {
  return new Proxy({} as Record<string, never>, {
    get: (_, k) => t.get(String(k)),
    set: (_, _k, v) => (t.put(v), true),
    ownKeys: () => t.values().map((r) => ('task' in r ? r.task : r.name)),
    getOwnPropertyDescriptor: (_, k) => (t.has(String(k)) ? { enumerable: true, configurable: true, value: t.get(String(k)) } : undefined),
  });
}

/** doc is an empty state: a unit of work over memory, and its tables as plain objects. */
function doc() {
  const work = new StateWork(new MemoryBackend());
  return { work, data: { tasks: table(work.tasks), agents: table(work.agents) } };
}

describe('observe with tasks of other states', () => {
  it('another state\'s task is listed as foreign on its agent, never recorded or adopted', () => {
    const { work, data } = doc();
    const pool = poolWith({ a1: [status('q/t/0', { stateId: OURS, pid: 1 }), status('q/t/0', { stateId: THEIRS, pid: 2 }), status('other/x/0', { stateId: THEIRS, pid: 3 })] });
    const out = { strays: [] as StrayTask[] };
    const events = observe(work, inventory(['a1']), pool, NOW, undefined, out);
    expect(Object.keys(data.tasks)).toEqual(['q/t/0']);
    expect(data.tasks['q/t/0']!.pid).toBe(1);
    expect(out.strays).toEqual([]);
    expect(events.filter((e) => e.kind === 'task-adopted').map((e) => e.task)).toEqual(['q/t/0']);
    expect(data.agents.a1!.foreign).toEqual([
      { task: 'q/t/0', state: THEIRS, driver: 'process', taskState: 'running', pid: 2, resources: expect.objectContaining({ cpus: 1, mem: GiB }) },
      { task: 'other/x/0', state: THEIRS, driver: 'process', taskState: 'running', pid: 3, resources: expect.objectContaining({ cpus: 1 }) },
    ]);
  });

  it('a foreign copy of a task id we run elsewhere is not a stray: nothing is stopped', () => {
    const { work, data } = doc();
    data.tasks['q/t/0'] = record('q/t/0', 'a1');
    const pool = poolWith({ a1: [status('q/t/0', { stateId: OURS })], a2: [status('q/t/0', { stateId: THEIRS })] });
    const out = { strays: [] as StrayTask[] };
    const events = observe(work, inventory(['a1', 'a2']), pool, NOW, undefined, out);
    expect(out.strays).toEqual([]);
    expect(events.some((e) => e.kind === 'task-duplicate')).toBe(false);
    expect(data.tasks['q/t/0']!.agent).toBe('a1');
    expect(data.agents.a2!.foreign?.map((f) => f.state)).toEqual([THEIRS]);
  });

  it('our recorded task whose only copy on the agent is another state\'s is gone (exited), the foreign one untouched', () => {
    const { work, data } = doc();
    data.tasks['q/t/0'] = record('q/t/0', 'a1');
    const pool = poolWith({ a1: [status('q/t/0', { stateId: THEIRS, pid: 7 })] });
    observe(work, inventory(['a1']), pool, NOW);
    expect(data.tasks['q/t/0']!.state).toBe('exited');
    expect(data.tasks['q/t/0']!.pid).toBeUndefined();
    expect(data.agents.a1!.foreign?.[0]).toMatchObject({ task: 'q/t/0', state: THEIRS, pid: 7 });
  });

  it('a legacy task (no state id) is ours when our state records it on that agent, else foreign with an unknown state', () => {
    const { work, data } = doc();
    data.tasks['old/a/0'] = record('old/a/0', 'a1', { state: 'running', pid: 11 });
    const pool = poolWith({ a1: [status('old/a/0', { pid: 11 }), status('old/b/0', { pid: 12 })], a2: [status('old/a/0', { pid: 13 })] });
    const out = { strays: [] as StrayTask[] };
    const events = observe(work, inventory(['a1', 'a2']), pool, NOW, undefined, out);
    expect(Object.keys(data.tasks)).toEqual(['old/a/0']);
    expect(data.tasks['old/a/0']).toMatchObject({ agent: 'a1', state: 'running', pid: 11 });
    expect(events.some((e) => e.kind === 'task-adopted')).toBe(false);
    // the unrecorded legacy task, and the legacy copy on an agent our record does not name, are left alone
    expect(out.strays).toEqual([]);
    expect(data.agents.a1!.foreign).toEqual([expect.objectContaining({ task: 'old/b/0', state: '', pid: 12 })]);
    expect(data.agents.a2!.foreign).toEqual([expect.objectContaining({ task: 'old/a/0', state: '', pid: 13 })]);
  });

  it('a legacy copy beside our own copy of the same id is not ours (our state-tagged copy is the task)', () => {
    const { work, data } = doc();
    data.tasks['q/t/0'] = record('q/t/0', 'a1');
    const pool = poolWith({ a1: [status('q/t/0', { state: 'exited', pid: undefined }), status('q/t/0', { stateId: OURS, pid: 21 })] });
    observe(work, inventory(['a1']), pool, NOW);
    expect(data.tasks['q/t/0']).toMatchObject({ state: 'running', pid: 21 });
    expect(data.agents.a1!.foreign).toEqual([expect.objectContaining({ task: 'q/t/0', state: '', taskState: 'exited' })]);
  });

  it('live foreign tasks take their resources from the agent\'s free capacity in the scheduler\'s snapshot', () => {
    const { work, data } = doc();
    const pool = poolWith({
      a1: [status('x/y/0', { stateId: THEIRS }), status('x/y/1', { stateId: THEIRS, resources: { cpus: 0.5, mem: GiB, disk: 0, gpus: 0, scalars: {}, ports: [] } }), status('x/y/2', { stateId: THEIRS, state: 'finished' })],
    });
    const inv = inventory(['a1']);
    observe(work, inv, pool, NOW);
    const { agents, actual } = snapshotOf(inv, work, { offline: false });
    expect(actual).toEqual([]);
    expect(agents[0]!.capacity).toMatchObject({ cpus: 2.5, mem: 6 * GiB, disk: 100 * GiB });
    // the state keeps the agent's real capacity
    expect(data.agents.a1!.resources).toMatchObject({ cpus: 4, mem: 8 * GiB });
    expect(lessForeign({ cpus: 1, mem: 1, disk: 0, gpus: 0, scalars: {} }, undefined)).toEqual({ cpus: 1, mem: 1, disk: 0, gpus: 0, scalars: {} });
  });

  it('an agent that goes unreachable keeps the foreign list last seen', () => {
    const { work, data } = doc();
    observe(work, inventory(['a1']), poolWith({ a1: [status('x/y/0', { stateId: THEIRS })] }), NOW);
    const gone = AgentPool.lentPool({ stateDir: '/tmp/unused', stateId: OURS });
    gone.failed.set('a1', { spec: agentSpec('a1'), error: 'unreachable' });
    observe(work, inventory(['a1']), gone, NOW);
    expect(data.agents.a1!.state).toBe('lost');
    expect(data.agents.a1!.foreign).toHaveLength(1);
  });

  it('an operation naming a foreign task fails with E_FOREIGN_TASK naming the other state', () => {
    const { work, data } = doc();
    observe(work, inventory(['a1']), poolWith({ a1: [status('x/y/0', { stateId: THEIRS })] }), NOW);
    let err: unknown;
    try {
      refuseForeign(work, 'x/y/0');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FactoryError);
    expect((err as FactoryError).code).toBe('E_FOREIGN_TASK');
    expect((err as FactoryError).message).toContain(THEIRS);
    // our own task of the same id is not refused
    data.tasks['x/y/0'] = record('x/y/0', 'a1');
    expect(() => refuseForeign(work, 'x/y/0')).not.toThrow();
  });
});
