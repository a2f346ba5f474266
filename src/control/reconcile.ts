/**
 * The control host's supervision pass: the plans as last applied, converged again without reading
 * a plan file (src/control/supervisor.ts runs it every interval).
 */
import type { FactoryError } from '../errors.js';
import { embeddedInventory, loadInventoryFile } from '../spec/index.js';
import type { InventorySpec, PlanSpec } from '../spec/model.js';
import { StateWork } from '../state/work.js';
import { stateOf } from './state-handle.js';
import { execute } from './plan-execute.js';
import { planAgainst, type PlanOptions } from './plan-prepare.js';
import type { ApplyResult, OpResult } from './plan-view.js';

/** ReconcileResult is one pass of reconcileRecorded: skipped (and why), or what each inventory's pass did. */
export interface ReconcileResult {
  skipped?: string;
  passes: { inventory: string; plans: string[]; changes: ApplyResult['changes']; results: OpResult[]; unplaced: number; error?: string }[];
}

/**
 * reconcileRecorded converges the agents to the plans as they were last applied (recorded in the
 * state with their inventory), without reading any plan file: a dead or unhealthy task is restarted
 * per its restart policy, a task of a lost agent moves, a stray copy is stopped. It is the control
 * host's supervision pass. It does not wait for the state lock (unless lockTimeoutMs says how long
 * to): while another factory holds it, the pass is skipped. The state is written only when something
 * was done. plans, when given, limits the pass to those plans (a deployment tick: src/deploy/runner.ts).
 */
export async function reconcileRecorded(opts: { stateDir: string; seed?: number; lockTimeoutMs?: number; progress?: (line: string) => void; plans?: ReadonlySet<string> }): Promise<ReconcileResult> {
  const state = await stateOf(opts.stateDir);
  try {
    await state.lock({ purpose: 'reconcile (control host)', timeoutMs: opts.lockTimeoutMs ?? 0, ...(opts.lockTimeoutMs ? { onWait: (who: string) => opts.progress?.(`waiting for the state lock held by ${who}`) } : {}) });
  } catch (err) {
    if ((err as FactoryError).code === 'E_STATE_LOCKED') return { skipped: 'the state is locked by another factory command', passes: [] };
    throw err;
  }
  const out: ReconcileResult = { passes: [] };
  try {
    const byInventory = new Map<string, PlanSpec[]>();
    for (const rec of state.view().list('plans')) {
      if (!rec.spec) continue; // applied before plans were recorded: the next apply records it
      if (opts.plans && !opts.plans.has(rec.name)) continue;
      const key = rec.inventory ?? '';
      byInventory.set(key, [...(byInventory.get(key) ?? []), rec.spec]);
    }
    for (const [inv, plans] of byInventory) {
      // one inventory that cannot be read (moved, now invalid) does not stop the passes of the others
      let inventory: InventorySpec;
      try {
        inventory = inv ? await loadInventoryFile(inv) : embeddedInventory();
      } catch (err) {
        const why = (err as Error).message;
        opts.progress?.(`cannot read inventory ${inv}, its plans (${plans.map((x) => x.name).join(', ')}) are not supervised: ${why}`);
        out.passes.push({ inventory: inv, plans: plans.map((x) => x.name), changes: { create: 0, destroy: 0, update: 0 }, results: [], unplaced: 0, error: why });
        continue;
      }
      const popts: PlanOptions = { planPaths: [], stateDir: state.dir, seed: opts.seed, progress: opts.progress, by: 'control-host', startDeployments: false };
      // a pass every few seconds: say what was done and what failed, not that the agents answered
      const quiet = (line: string) => {
        if (!/^connecting to \d+ agents?$|^agent [^:]+: connected$/.test(line)) opts.progress?.(line);
      };
      const p = await planAgainst(state, new StateWork(state, 'control-host'), plans, inventory, { ...popts, progress: quiet }, 'apply');
      try {
        const c = p.diff.changes;
        const results = c.create + c.update + c.destroy > 0 ? await execute(p, popts) : [];
        // restarts of crash-looping tasks are told by their task-crash-loop events, not one more event a pass
        const told = results.filter((r) => !r.crashLoop).length;
        if (told > 0) {
          const now = new Date().toISOString();
          p.work.event({ at: now, topic: 'reconcile', kind: 'plan-reconciled', message: `reconciled ${plans.map((x) => x.name).join(', ')}: ${told} change${told === 1 ? '' : 's'}` });
        }
        // observations (an agent lost or back, a task found exited) are recorded even when nothing was done
        await p.work.flush();
        out.passes.push({ inventory: inventory.file, plans: plans.map((x) => x.name), changes: c, results, unplaced: p.diff.unplaced.length });
      } finally {
        await p.pool?.close();
      }
    }
    return out;
  } finally {
    await state.unlock();
  }
}
