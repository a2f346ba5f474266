/**
 * Records and writes the state tests share: a plan, a task, and a locked commit of plans with the
 * event an apply writes (the contract suite and the file backend's own tests).
 */
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
