/**
 * services.ts is the only file of src/api that calls into src/control: it implements ControlApi over
 * the control operations as they are today (each opens the state directory itself). When those take
 * a StateBackend instead, only this file changes.
 *
 * Plans arrive as texts, parsed by the API (positions name the sent file); the control operations
 * take the parsed specs and record them as applied. A sent inventory is kept under
 * `<state>/api-plans/` by content hash, because supervision re-reads the inventory a plan was applied with.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { applyPlans, destroyPlans, diffPlans, type PlanOptions } from '../control/plan.js';
import { logs, status } from '../control/status.js';
import { restartTask } from '../control/tasks.js';
import { vmAction } from '../control/vms.js';
import { drainAgent } from '../control/drain.js';
import { findJob, runLogs, setSuspended } from '../control/jobs.js';
import { operateDeployment, promoteDeployment } from '../deploy/actions.js';
import { stateOf } from '../control/state-handle.js';
import { FactoryError } from '../errors.js';
import { jobsRunner } from '../jobs/runner.js';
import type { ControlApi, OpContext, PlanDocuments, SpecDocument } from './contract.js';

/** ControlServicesOptions locate the state and the host's inventory. */
export interface ControlServicesOptions {
  stateDir: string;
  /** inventoryPath is the host's inventory (absent: ./inventory.yaml, else the embedded default). */
  inventoryPath?: string;
}

/** createControlServices returns the ControlApi backed by src/control. */
export function createControlServices(opts: ControlServicesOptions): ControlApi {
  const stateDir = path.resolve(opts.stateDir);
  const uploads = path.join(stateDir, 'api-plans');

  const inventoryOf = async (inv: SpecDocument | undefined): Promise<string | undefined> => {
    if (!inv) return opts.inventoryPath;
    await mkdir(uploads, { recursive: true, mode: 0o700 });
    const file = path.join(uploads, `inventory-${createHash('sha256').update(inv.text).digest('hex').slice(0, 16)}.yaml`);
    await writeFile(file, inv.text, { mode: 0o600 });
    return file;
  };

  /** planOptions hands the parsed plans to the control operations (recorded under the names they were sent with). */
  const planOptions = async (docs: PlanDocuments, ctx: OpContext): Promise<PlanOptions> => ({
    planPaths: [],
    planSpecs: docs.plans,
    stateDir,
    inventoryPath: await inventoryOf(docs.inventory),
    offline: docs.offline,
    seed: docs.seed,
    progress: ctx.progress,
    by: ctx.by,
  });

  return {
    status: (o, ctx) => status({ stateDir, inventoryPath: opts.inventoryPath, cached: o.cached, events: o.events, by: ctx.by, readOnly: o.readOnly }),
    restartTask: (task, ctx) => restartTask({ stateDir, inventoryPath: opts.inventoryPath, task, by: ctx.by }),
    logs: (req, ctx) =>
      logs({ stateDir, inventoryPath: opts.inventoryPath, task: req.task, follow: req.follow, tail: req.tail, stream: req.stream, onData: req.onData, signal: ctx.signal }),
    drain: (agent, o, ctx) => drainAgent({ stateDir, inventoryPath: opts.inventoryPath, agent, undo: o.undo, progress: ctx.progress, by: ctx.by }),
    diffPlans: async (docs, ctx) => diffPlans(await planOptions(docs, ctx)),
    applyPlans: async (docs, ctx) => applyPlans(await planOptions(docs, ctx)),
    destroyPlans: async (docs, ctx) => destroyPlans(await planOptions(docs, ctx)),
    vmAction: (task, action, ctx) => vmAction({ stateDir, inventoryPath: opts.inventoryPath, task, action, by: ctx.by }),
    runJob: async (name, o, ctx) => {
      const runner = jobsRunner.current;
      if (!runner) throw new FactoryError('this process runs no scheduler of jobs', { code: 'E_NO_SCHEDULER', hint: 'jobs run on a control host: factory control serve' });
      const job = findJob((await stateOf(stateDir)).view(), name, ctx.project);
      return runner.runNow(job.id, { force: o.force, by: ctx.by });
    },
    suspendJob: (name, suspend, ctx) => setSuspended(stateDir, name, suspend, ctx.by, ctx.project),
    promoteDeployment: (id, ctx) => promoteDeployment(stateDir, id, ctx.by, ctx.project),
    operateDeployment: (id, action, ctx) => operateDeployment(stateDir, id, action, ctx.by, ctx.project),
    runLogs: (req, ctx) => runLogs({ stateDir, inventoryPath: opts.inventoryPath, run: req.run, follow: req.follow, tail: req.tail, stream: req.stream, onData: req.onData, signal: ctx.signal, project: ctx.project }),
  };
}
