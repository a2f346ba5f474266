/**
 * Task actions an operator takes by hand (the dashboard's `r`): restart one task where it runs.
 * The run spec is rebuilt from the task's recorded plan file, and refused when that file changed
 * since it was applied (that is an update: `factory plan apply` does it).
 */
import { FactoryError } from '../errors.js';
import { loadPlans, resolveInventory } from '../spec/index.js';
import { withStateWork } from './state-handle.js';
import { connectAgentOf } from './session.js';
import { runSpecOf, specHashOf } from './desired.js';
import { recordTaskStatus, refuseForeign } from './snapshot.js';

/** RestartTaskOptions select the state, the inventory and the task (its full id). */
export interface RestartTaskOptions {
  stateDir: string;
  inventoryPath?: string;
  task: string;
  /** by is who asks (recorded on the event). */
  by?: string;
}

/** RestartTaskResult is the task's state after the restart. */
export interface RestartTaskResult {
  task: string;
  agent: string;
  state: string;
  pid?: number;
  error?: string;
}

/** restartTask stops a task (keeping its folder and logs) and starts it again with the same spec on the same agent. */
export async function restartTask(opts: RestartTaskOptions): Promise<RestartTaskResult> {
  const inventory = await resolveInventory(opts.inventoryPath);
  return withStateWork(
    opts.stateDir,
    { purpose: `restart ${opts.task}`, timeoutMs: 10_000 },
    opts.by,
    async (work, state) => {
      refuseForeign(work, opts.task);
      const rec = work.tasks.get(opts.task);
      if (!rec) throw new FactoryError(`no task '${opts.task}' in the state`, { code: 'E_TASK_UNKNOWN' });
      const planRec = work.plans.get(rec.plan);
      if (!planRec) throw new FactoryError(`task ${rec.task} belongs to plan ${rec.plan}, which is not recorded`, { code: 'E_PLAN_UNKNOWN', hint: 'apply the plan again' });
      // the plan as applied when the state recorded it, else its file as it is now
      const plan = planRec.spec ?? (await loadPlans([planRec.file]))[0];
      const group = plan?.groups.find((g) => g.name === rec.group);
      if (!plan || plan.name !== rec.plan || !group) {
        throw new FactoryError(`plan file ${planRec.file} no longer defines ${rec.plan}/${rec.group}`, { code: 'E_PLAN_CHANGED', hint: 'run factory plan apply' });
      }
      const specHash = specHashOf(plan, group);
      if (specHash !== rec.specHash) {
        throw new FactoryError(`${planRec.file} changed since ${rec.task} was started: restarting it would update it`, {
          code: 'E_PLAN_CHANGED',
          hint: `run factory plan apply ${planRec.file}`,
        });
      }
      const { pool, spec, conn } = await connectAgentOf(rec, inventory, state);
      try {
        await conn.client.stop(rec.task, { remove: false, graceMs: group.stopGraceMs });
        const runSpec = runSpecOf(
          {
            task: rec.task, plan: rec.plan, group: rec.group, project: rec.project, idc: spec.idc, cluster: spec.cluster,
            agent: rec.agent, driver: rec.driver, specHash, resources: rec.resources, reason: 'restart',
          },
          plan,
          group,
        );
        const status = await conn.client.run(runSpec);
        const now = new Date().toISOString();
        recordTaskStatus(work, rec.agent, { ...status, resources: status.resources ?? rec.resources }, now);
        const ok = status.state === 'running' || status.state === 'finished';
        work.event({
          at: now,
          kind: ok ? 'task-restarted' : 'task-failed',
          task: rec.task,
          agent: rec.agent,
          message: ok ? `restarted ${rec.task} on ${rec.agent} (by hand)` : `${rec.task} failed to restart on ${rec.agent}: ${status.error ?? status.state}`,
        });
        return { task: rec.task, agent: rec.agent, state: status.state, pid: status.pid, error: status.error };
      } finally {
        await pool.close();
      }
    },
  );
}
