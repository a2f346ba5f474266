/**
 * services.ts is the only file of src/api that calls into src/control: it implements ControlApi over
 * the control operations as they are today (each opens the state directory itself). When those take
 * a StateBackend instead, only this file changes.
 *
 * Plans arrive as texts; the control operations read files. Until they take PlanSpecs, the texts are
 * written under `<state>/api-plans/` (apply and destroy: `<plan>.yaml`, kept, because the recorded
 * plan's file is what drain and restart read back; diff: a temporary folder, removed afterwards).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { applyPlans, destroyPlans, diffPlans, type PlanOptions } from '../control/plan.js';
import { logs, status } from '../control/status.js';
import { restartTask } from '../control/tasks.js';
import { vmAction } from '../control/vms.js';
import { drainAgent } from '../control/drain.js';
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

  /** planOptions writes the plans' texts where the control operations read them. */
  const planOptions = async (docs: PlanDocuments, ctx: OpContext, dir: string): Promise<PlanOptions> => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const planPaths: string[] = [];
    for (const [i, plan] of docs.plans.entries()) {
      const file = path.join(dir, `${plan.name}.yaml`);
      await writeFile(file, docs.texts[i]!.text, { mode: 0o600 });
      planPaths.push(file);
    }
    // `by` (who asks) is recorded by the control side once PlanOptions carries it (on main since 5810781)
    const who = { by: ctx.by };
    return { planPaths, stateDir, inventoryPath: await inventoryOf(docs.inventory), offline: docs.offline, seed: docs.seed, progress: ctx.progress, ...who };
  };

  return {
    status: (o) => status({ stateDir, inventoryPath: opts.inventoryPath, cached: o.cached, events: o.events }),
    restartTask: (task) => restartTask({ stateDir, inventoryPath: opts.inventoryPath, task }),
    logs: (req, ctx) =>
      logs({ stateDir, inventoryPath: opts.inventoryPath, task: req.task, follow: req.follow, tail: req.tail, stream: req.stream, onData: req.onData, signal: ctx.signal }),
    drain: (agent, o, ctx) => drainAgent({ stateDir, inventoryPath: opts.inventoryPath, agent, undo: o.undo, progress: ctx.progress }),
    diffPlans: async (docs, ctx) => {
      await mkdir(uploads, { recursive: true, mode: 0o700 });
      const dir = await mkdtemp(path.join(uploads, 'diff-'));
      try {
        return await diffPlans(await planOptions(docs, ctx, dir));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    applyPlans: async (docs, ctx) => applyPlans(await planOptions(docs, ctx, uploads)),
    destroyPlans: async (docs, ctx) => destroyPlans(await planOptions(docs, ctx, uploads)),
    vmAction: (task, action) => vmAction({ stateDir, inventoryPath: opts.inventoryPath, task, action }),
  };
}
