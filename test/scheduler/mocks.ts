/**
 * Mock builders for scheduler tests (Nomad `mock.Node()` / `mock.Job()` style): sensible defaults,
 * override what the test is about.
 */
import type { ActualTask, AgentSnapshot, Constraint, ConstraintOp, DesiredGroup, SchedulerInput, TaskResources } from '../../src/scheduler/types.js';

/** GiB is 2^30 bytes. */
export const GiB = 1024 ** 3;

/** mockResources builds TaskResources (zero except what is given). */
export function mockResources(r: Partial<TaskResources> = {}): TaskResources {
  return { cpus: 0, mem: 0, disk: 0, gpus: 0, scalars: {}, ports: [], ...r };
}

/** mockAgent builds a ready agent with 8 cpus, 16 GiB mem, 100 GiB disk and every driver. */
export function mockAgent(a: Partial<AgentSnapshot> & { name: string }): AgentSnapshot {
  return {
    idc: 'bj1',
    cluster: 'bj1-a',
    state: 'ready',
    capacity: { cpus: 8, mem: 16 * GiB, disk: 100 * GiB, gpus: 0, scalars: {} },
    attributes: {},
    drivers: ['process', 'docker', 'libvirt'],
    ...a,
  };
}

/** mockGroup builds a process group `web` of plan `p` with 1 task of 1 cpu and 1 GiB. */
export function mockGroup(g: Partial<DesiredGroup> = {}): DesiredGroup {
  return {
    plan: 'p',
    group: 'web',
    project: 'acme',
    kind: 'process',
    driver: 'process',
    count: 1,
    everyAgent: false,
    resources: mockResources({ cpus: 1, mem: GiB }),
    constraints: [],
    specHash: 'h1',
    strategy: 'binpack',
    ...g,
  };
}

/** mockTask builds an actual running task of a group, on an agent. */
export function mockTask(g: DesiredGroup, index: number, agent: string, t: Partial<ActualTask> = {}): ActualTask {
  return {
    task: `${g.plan}/${g.group}/${index}`,
    plan: g.plan,
    group: g.group,
    project: g.project,
    agent,
    driver: g.driver,
    specHash: g.specHash,
    state: 'running',
    resources: g.resources,
    ...t,
  };
}

/** mockConstraint builds a Constraint with its source text. */
export function mockConstraint(attribute: string, op: ConstraintOp, value: string | string[]): Constraint {
  return { attribute, op, value, source: `${attribute} ${op} ${Array.isArray(value) ? `(${value.join(', ')})` : value}` };
}

/** mockInput builds a SchedulerInput; `plans` defaults to the plans of the groups. */
export function mockInput(i: Partial<SchedulerInput>): SchedulerInput {
  const groups = i.groups ?? [];
  return { agents: [], groups, actual: [], plans: [...new Set(groups.map((g) => g.plan))], seed: 1, ...i };
}
