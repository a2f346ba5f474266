/**
 * Records and writes the state tests share: a plan, a task, a deployment, and a locked commit of plans with the
 * event an apply writes (the contract suite and the file backend's own tests).
 */
import type { DeploymentRecord } from '../../src/deploy/types.js';
import type { StateBackend } from '../../src/state/backend.js';
import type { PlanRecord, TaskRecord } from '../../src/state/types.js';
import { StateWork } from '../../src/state/work.js';

/** plan is a plan record of project p. */
export const plan = (name: string): PlanRecord => ({ name, project: 'p', file: `${name}.yaml`, appliedAt: 'now' });

/** task is a process task record of plan a on agent local. */
export const task = (id: string, state = 'running'): TaskRecord => ({
  task: id, plan: 'a', group: 'g', project: 'p', agent: 'local', driver: 'process', specHash: 'h', state: state as TaskRecord['state'],
  resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: 'now',
});

/** deployment is a running deployment of a/g (two tasks, one started on the new spec). */
export const deployment = (id: string): DeploymentRecord => ({
  id, plan: 'a', group: 'g', project: 'p', fromHash: 'h1', toHash: 'h2', status: 'running', promoted: true, old: 1,
  toSpec: { name: 'g', kind: 'process', driver: 'process', count: 2, everyAgent: false, resources: task('x').resources, constraints: [], strategy: 'binpack', command: ['sleep', '60'], env: {}, stopGraceMs: 1000, restart: 'always', line: 1, col: 1 },
  policy: { maxParallel: 1, maxSurge: 0, minHealthyTimeMs: 0, healthyDeadlineMs: 1000, progressDeadlineMs: 0, autoRevert: false, canary: 0, autoPromote: false },
  tasks: [{ task: 'a/g/0', state: 'pending', startedAt: 'now' }], createdAt: 'now', updatedAt: 'now', progressAt: 'now',
});

/** put commits the plans under the lock, with one plan-applied event. */
export async function put(b: StateBackend, ...plans: string[]): Promise<void> {
  await b.lock();
  try {
    const w = new StateWork(b);
    for (const p of plans) w.plans.put(plan(p));
    w.event({ kind: 'plan-applied', message: `applied ${plans.join(', ')}`, plan: plans[0] });
    await w.flush();
  } finally {
    await b.unlock();
  }
}
