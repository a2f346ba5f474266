/**
 * The plan operations behind `plan diff`, `plan apply` and `plan destroy`. diff is apply without
 * the applier (Nomad's `job plan`): the same scheduler run against the same snapshot
 * (plan-prepare.ts), carried out by apply and destroy (plan-execute.ts), printed as plan-view.ts's
 * documents. The control host's supervision pass is reconcile.ts.
 */
import path from 'node:path';
import { EMBEDDED_INVENTORY_FILE } from '../spec/index.js';
import type { StateWork } from '../state/work.js';
import { execute } from './plan-execute.js';
import { forgetJobs, recordJobs, type JobChanges } from './plan-jobs.js';
import { prepare, type PlanOptions } from './plan-prepare.js';
import type { ApplyResult, DiffResult } from './plan-view.js';

export type { PlanOptions } from './plan-prepare.js';
export type { ApplyResult, DiffResult, OpResult, PlacementView, ResourcesView, StopView, UnplacedView } from './plan-view.js';

/** diffPlans computes what apply would do; it writes nothing. */
export async function diffPlans(opts: PlanOptions): Promise<DiffResult> {
  const p = await prepare(opts, 'diff');
  await p.pool?.close();
  return p.diff;
}

/** applyPlans converges the agents to the plans: stops first, then starts, recording each step. */
export async function applyPlans(opts: PlanOptions): Promise<ApplyResult> {
  const p = await prepare(opts, 'apply');
  try {
    const results = await execute(p, opts);
    const now = new Date().toISOString();
    const jobs: JobChanges = { created: [], updated: [], removed: [] };
    // the plan as applied (and its inventory) is the desired state a control host keeps converging to
    const inventory = p.inventory.file === EMBEDDED_INVENTORY_FILE ? undefined : path.resolve(p.inventory.file);
    for (const plan of p.plans) {
      // a plan file's absolute path (`agents drain` and the dashboard may run from another directory); a sent plan keeps its name
      const sent = opts.planTexts?.some((t) => t.file === plan.file) || opts.planSpecs?.includes(plan);
      const file = sent ? plan.file : path.resolve(plan.file);
      p.work.plans.put({ name: plan.name, project: plan.project, file, appliedAt: now, spec: plan, ...(inventory ? { inventory } : {}), ...(opts.by ? { appliedBy: opts.by } : {}) });
      const j = recordJobs(p.work, plan, now, opts.by);
      jobs.created.push(...j.created);
      jobs.updated.push(...j.updated);
      jobs.removed.push(...j.removed);
    }
    for (const plan of p.plans) {
      const c = p.diff.placements.filter((x) => x.plan === plan.name && x.action !== 'keep').length + p.diff.stops.filter((x) => x.plan === plan.name).length;
      p.work.event({ at: now, kind: 'plan-applied', plan: plan.name, project: plan.project, message: `applied ${plan.name}${opts.by ? ` (by ${opts.by})` : ''}: ${c} change${c === 1 ? '' : 's'}` });
    }
    await p.work.flush();
    return { ...p.diff, results, ok: results.every((r) => r.ok), ...(jobs.created.length + jobs.updated.length + jobs.removed.length ? { jobs } : {}) };
  } finally {
    await p.pool?.close();
    await p.state.unlock();
  }
}

/** destroyPlans stops every task of the plans and forgets them. */
export async function destroyPlans(opts: PlanOptions): Promise<ApplyResult> {
  const p = await prepare(opts, 'destroy');
  try {
    const results = await execute(p, opts);
    const now = new Date().toISOString();
    forgetDestroyed(p.work, p.plans.map((x) => x.name));
    const removed = forgetJobs(p.work, p.plans.map((x) => x.name));
    for (const plan of p.plans) p.work.event({ at: now, kind: 'plan-destroyed', plan: plan.name, project: plan.project, message: `destroyed ${plan.name}${opts.by ? ` (by ${opts.by})` : ''}` });
    await p.work.flush();
    return { ...p.diff, results, ok: results.every((r) => r.ok), ...(removed.length ? { jobs: { created: [], updated: [], removed } } : {}) };
  } finally {
    await p.pool?.close();
    await p.state.unlock();
  }
}

/**
 * forgetDestroyed updates the plan records after a destroy: a plan none of whose tasks is left is
 * forgotten; one with tasks left (a stop failed, its agent unreachable) keeps its record for the next
 * destroy but loses its applied spec, so a control host's supervision never brings it back.
 */
export function forgetDestroyed(work: StateWork, plans: string[]): void {
  const left = new Set(work.tasks.values().map((t) => t.plan));
  for (const name of plans) {
    const rec = work.plans.get(name);
    if (!rec) continue;
    if (!left.has(name)) work.plans.delete(name);
    else {
      const { spec: _spec, ...rest } = rec;
      work.plans.put(rest);
    }
  }
}
