/**
 * A deployment pass: the part of every plan pass (apply, a control host's supervision, a deployment
 * tick) that concerns deployments, run after the agents were observed and before the scheduler.
 *
 * - apply: a group whose tasks run another spec than the plan's (not only its count) gets a
 *   deployment (one that rolls to another spec is superseded: aborted, its old spec kept as the one
 *   to return to); a group that no longer exists ends its deployment (aborted).
 * - every pass: each group's latest deployment takes a step (engine.ts) and the group is presented
 *   to the scheduler as the step says (shape.ts); a failed deployment with autoRevert records the old
 *   spec as the plan's again and starts the deployment back to it. A deployment that ended still
 *   shapes its group while its plan asks for the spec it rolled to: its old tasks are kept as they are
 *   (a failed rollout is not finished by the next supervision pass), dead ones restart.
 * Records and events go into the pass's unit of work, committed with the rest of the pass.
 */
import { randomBytes } from 'node:crypto';
import { specHashOf } from '../control/desired.js';
import { parseTaskIndex } from '../scheduler/reconcile.js';
import type { ActualTask, DesiredGroup, SchedulePlan } from '../scheduler/types.js';
import type { GroupSpec, InventorySpec, PlanSpec, UpdatePolicy } from '../spec/model.js';
import { resolveUpdatePolicy } from '../spec/update.js';
import type { TaskRecord } from '../state/types.js';
import type { StateWork } from '../state/work.js';
import { step, type GroupTask, type StepEvent } from './engine.js';
import { stepResourcePlan, type RollTask } from './resource-roll.js';
import { shapeInput, type GroupShape } from './shape.js';
import { describePolicy } from './describe.js';
import { isActive, type DeploymentRecord } from './types.js';

/** KEEP_FINISHED is how many ended deployments of a group are kept (the newest). */
export const KEEP_FINISHED = 5;

/** DeploymentView is a deployment as plan diff and plan apply print it. */
export interface DeploymentView {
  /** id is the deployment's id (absent in a diff: apply would start it). */
  id?: string;
  plan: string;
  group: string;
  status: string;
  /** started: this apply started it (or, in a diff, apply would). */
  started: boolean;
  from: string;
  to: string;
  /** tasks is the group's count; old, healthy: where the rollout stands. */
  tasks: number;
  old: number;
  healthy: number;
  policy: UpdatePolicy;
  message?: string;
  /** revertedBy is the deployment that reverts this one (apply --wait). */
  revertedBy?: string;
}

/** DeploymentPassInput is what a pass needs. */
export interface DeploymentPassInput {
  work: StateWork;
  plans: PlanSpec[];
  inventory: InventorySpec;
  /** groups are the plans' desired groups; actual every task (as the scheduler will see them). */
  groups: DesiredGroup[];
  actual: ActualTask[];
  mode: 'diff' | 'apply' | 'destroy';
  /** start: a changed group gets a deployment (an operator's apply and diff); supervision only steps the ones there are. */
  start: boolean;
  now: number;
  by?: string;
}

/** DeploymentPass is what a pass decided. */
export interface DeploymentPass {
  /** plans are the pass's plans, with reverted groups back on their old spec. */
  plans: PlanSpec[];
  /** shaped says whether any group is presented otherwise than desired (schedule the shaped input). */
  shaped: boolean;
  /** groups and actual are the scheduler's input as the deployments present it. */
  groups: DesiredGroup[];
  actual: ActualTask[];
  views: DeploymentView[];
  /** noteUnplaced records, on each group's deployment, the new tasks the schedule could not place. */
  noteUnplaced(plan: SchedulePlan): void;
}

/** newDeploymentId makes a deployment id: `dep-` + 10 hex. */
export function newDeploymentId(): string {
  return `dep-${randomBytes(5).toString('hex')}`;
}

/** policyOf is a group's update policy: its block over its plan's over the inventory's, contradictions clamped. */
export function policyOf(plan: PlanSpec, g: GroupSpec, inventory: InventorySpec): UpdatePolicy {
  const p = resolveUpdatePolicy(g.update, plan.update, inventory.settings?.update);
  // a plan file cannot contradict itself (src/spec checks it); with the inventory's layer under it, it still may
  if (p.healthyDeadlineMs <= p.minHealthyTimeMs) p.healthyDeadlineMs = p.minHealthyTimeMs + 60_000;
  if (p.progressDeadlineMs > 0 && p.progressDeadlineMs <= p.healthyDeadlineMs) p.progressDeadlineMs = p.healthyDeadlineMs + 60_000;
  return p;
}

/** isResourcePlanSpec says whether a group is a VM resource plan (total + shapes), rolled by resources (src/scheduler's isResourcePlan, on the spec). */
export function isResourcePlanSpec(g: GroupSpec): boolean {
  return g.total !== undefined && (g.shapes?.length ?? 0) > 0 && !g.everyAgent;
}

/** latestByGroup returns each group's newest deployment, by `plan/group`. */
export function latestByGroup(records: DeploymentRecord[]): Map<string, DeploymentRecord> {
  const out = new Map<string, DeploymentRecord>();
  for (const d of records) {
    const key = `${d.plan}/${d.group}`;
    const prev = out.get(key);
    if (!prev || d.createdAt > prev.createdAt || (d.createdAt === prev.createdAt && d.id > prev.id)) out.set(key, d);
  }
  return out;
}

/** deploymentPass runs the deployments' part of a plan pass (see the top of this file). */
export function deploymentPass(input: DeploymentPassInput): DeploymentPass {
  const { work, inventory, mode, now, by } = input;
  const iso = new Date(now).toISOString();
  const write = mode !== 'diff';
  let plans = input.plans;
  let groups = input.groups;
  const shapes = new Map<string, GroupShape>();
  const views: DeploymentView[] = [];
  const latest = latestByGroup(work.deployments.values());
  const inScope = new Set(plans.map((p) => p.name));
  const byGroup = new Map<string, TaskRecord[]>();
  for (const t of work.tasks.values()) {
    if (!inScope.has(t.plan)) continue;
    const key = `${t.plan}/${t.group}`;
    const list = byGroup.get(key);
    if (list) list.push(t);
    else byGroup.set(key, [t]);
  }
  const tasksOf = (plan: string, group: string) => byGroup.get(`${plan}/${group}`) ?? [];
  const emit = (d: DeploymentRecord, e: { kind: string; message: string; task?: string }) => {
    if (write) work.event({ at: iso, topic: 'deployment', kind: e.kind, message: e.message, deployment: d.id, plan: d.plan, project: d.project, ...(e.task ? { task: e.task } : {}) });
  };
  const put = (d: DeploymentRecord) => {
    if (write) work.deployments.put(d);
  };

  // groups gone (destroyed, removed from their plan) end their deployment
  for (const d of latest.values()) {
    if (!inScope.has(d.plan) || !isActive(d)) continue;
    const plan = plans.find((p) => p.name === d.plan);
    if (mode !== 'destroy' && plan?.groups.some((g) => g.name === d.group)) continue;
    const ended: DeploymentRecord = { ...d, status: 'aborted', finishedAt: iso, updatedAt: iso, message: mode === 'destroy' ? 'the plan was destroyed' : 'the group was removed from its plan' };
    put(ended);
    emit(ended, { kind: 'deployment-aborted', message: `${d.plan}/${d.group}: ${ended.message}` });
    latest.set(`${d.plan}/${d.group}`, ended);
  }
  if (mode === 'destroy') return { plans, shaped: false, groups, actual: input.actual, views, noteUnplaced: () => undefined };

  for (const plan of input.plans) {
    for (const g of plan.groups) {
      const split = isResourcePlanSpec(g); // its VMs differ in shape: rolled in batches by resources (resource-roll.ts)
      const key = `${plan.name}/${g.name}`;
      const toHash = specHashOf(plan, g);
      const tasks = tasksOf(plan.name, g.name);
      let d = latest.get(key);
      const oldTasks = tasks.filter((t) => t.specHash !== toHash);
      // apply: a changed group gets a deployment
      if (input.start) {
        const rolling = d && isActive(d) && d.toHash === toHash;
        if (!rolling && oldTasks.length > 0) {
          const recorded = work.plans.get(plan.name)?.spec?.groups.find((x) => x.name === g.name);
          const recordedPlan = work.plans.get(plan.name)?.spec;
          let fromSpec: GroupSpec | undefined;
          if (d && isActive(d)) fromSpec = d.fromSpec; // superseded: the last spec that was good
          else if (recorded && recordedPlan && specHashOf(recordedPlan, recorded) !== toHash) fromSpec = recorded;
          else if (d && d.toHash === toHash) fromSpec = d.fromSpec; // tried again after it failed
          const fromHash = fromSpec ? specHashOf(recordedPlan ?? plan, fromSpec) : mostCommon(oldTasks.map((t) => t.specHash));
          const id = newDeploymentId();
          const policy = policyOf(plan, g, inventory);
          if (d && isActive(d)) {
            const superseded: DeploymentRecord = { ...d, status: 'aborted', finishedAt: iso, updatedAt: iso, message: `superseded by ${id}` };
            put(superseded);
            emit(superseded, { kind: 'deployment-aborted', message: `${key}: superseded by ${id} (the plan was applied with another spec)` });
          }
          const fresh: DeploymentRecord = {
            id, plan: plan.name, group: g.name, project: plan.project, fromHash, toHash, ...(fromSpec ? { fromSpec } : {}), toSpec: g, policy,
            status: 'running', promoted: policy.canary === 0 || split, tasks: [], old: oldTasks.length, createdAt: iso, updatedAt: iso, progressAt: iso, ...(by ? { by } : {}),
          };
          if (!write) {
            views.push(viewOf(fresh, split ? oldTasks.length : g.count, true, true)); // a diff says what apply would start, and no more
            continue;
          }
          put(fresh);
          emit(fresh, { kind: 'deployment-started', message: `rolling ${key}: ${oldTasks.length} of ${tasks.length} task${tasks.length === 1 ? '' : 's'} from ${fromHash} to ${toHash} (${describePolicy(policy)})` });
          prune(work, key, id);
          d = fresh;
        }
      }
      if (!d || d.toHash !== toHash || mode === 'diff') {
        if (d && mode === 'diff' && isActive(d) && d.toHash === toHash) views.push(viewOf(d, g.count, false, false));
        continue;
      }
      if (d.status === 'succeeded') continue; // done: a task on another spec found later is updated as any other
      const view: GroupTask[] = [];
      for (const t of tasks) {
        const index = parseTaskIndex(t.task, { plan: plan.name, group: g.name });
        if (index === undefined) continue;
        view.push({ task: t.task, index, specHash: t.specHash, state: t.state, ...(t.health ? { health: t.health } : {}), ...(t.power ? { power: t.power } : {}), ...(t.startedAt ? { startedAt: t.startedAt } : {}), ...(t.error ? { error: t.error } : {}), ...(t.restarts ? { restarts: t.restarts } : {}) });
      }
      const shapeOfTask = new Map(tasks.map((t) => [t.task, { cpus: t.resources.cpus, mem: t.resources.mem, disk: t.resources.disk, gpus: t.resources.gpus }]));
      const vms = (): RollTask[] => view.map((t) => ({ ...t, shape: shapeOfTask.get(t.task) ?? { cpus: 0, mem: 0, disk: 0, gpus: 0 } }));
      const take = (spec: GroupSpec, rec: DeploymentRecord, always: boolean): { shape: GroupShape; revert: boolean; deployment: DeploymentRecord } => {
        const hasHealthCheck = spec.health !== undefined;
        if (isResourcePlanSpec(spec)) {
          const r = stepResourcePlan({ deployment: rec, hasHealthCheck, tasks: vms(), now });
          if (r.changed || always) put(r.deployment);
          for (const e of r.events) emit(r.deployment, eventOf(r.deployment, e));
          return { shape: { toHash: rec.toHash, extra: 0, replace: new Set(), roll: { stop: r.stop, start: r.start } }, revert: r.revert, deployment: r.deployment };
        }
        const count = spec.everyAgent ? view.filter((t) => t.state === 'running' || t.state === 'pending').length : spec.count;
        const decision = step({ deployment: rec, count, everyAgent: spec.everyAgent, hasHealthCheck, tasks: view, now });
        if (decision.changed || always) put(decision.deployment);
        for (const e of decision.events) emit(decision.deployment, eventOf(decision.deployment, e));
        return { shape: { toHash: rec.toHash, extra: decision.extra, replace: new Set(decision.replace) }, revert: decision.revert, deployment: decision.deployment };
      };
      const first = take(g, d, false);
      d = first.deployment;
      let shape = first.shape;
      if (first.revert && d.fromSpec) {
        const back = startRevert(work, plan, d, iso, { inventory, by });
        emit(d, { kind: 'deployment-reverted', message: `${key}: reverting to ${d.fromHash} by ${back.revert.id}` });
        emit(back.revert, { kind: 'deployment-started', message: `reverting ${key} to ${back.revert.toHash} (${d.id} failed)` });
        plans = plans.map((p) => (p.name === plan.name ? back.plan : p));
        const revertedGroup = back.plan.groups.find((x) => x.name === g.name)!;
        const splitOf = revertedGroup.total && revertedGroup.shapes ? { total: { ...revertedGroup.total }, shapes: revertedGroup.shapes.map((x) => ({ ...x })) } : {};
        groups = groups.map((x) => (x.plan === plan.name && x.group === g.name ? { ...x, specHash: back.revert.toHash, resources: revertedGroup.resources, ...splitOf } : x));
        const again = take(revertedGroup, back.revert, true);
        shape = again.shape;
        d = again.deployment;
      }
      shapes.set(key, shape);
      views.push(viewOf(d, split ? (d.split?.length ?? 0) : g.count, d.createdAt === iso, false));
    }
  }
  const shaped = shapeInput(groups, input.actual, shapes);
  return {
    plans,
    shaped: shapes.size > 0,
    groups: shaped.groups,
    actual: shaped.actual,
    views,
    noteUnplaced: (schedule) => {
      if (!write) return;
      for (const [key] of shapes) {
        const rec = latestByGroup(work.deployments.values()).get(key);
        if (!rec || !isActive(rec)) continue;
        const unplaced = schedule.unplaced.filter((u) => `${u.plan}/${u.group}` === key).map((u) => ({ task: u.task, reason: u.reason }));
        if (JSON.stringify(unplaced) === JSON.stringify(rec.unplaced ?? [])) continue;
        const { unplaced: _old, ...rest } = rec;
        put({ ...rest, ...(unplaced.length ? { unplaced } : {}), updatedAt: iso });
        if (unplaced.length) emit(rec, { kind: 'deployment-unplaced', message: `${key}: ${unplaced.map((u) => `${u.task}: ${u.reason}`).join('; ')}` });
      }
    },
  };
}

/**
 * startRevert records the old spec as the plan's again and starts the deployment back to it (revertOf):
 * the engine's autoRevert, and `factory deploy revert`. Its policy is the old spec's under the
 * inventory when given, else the reverted deployment's; no canary, no revert of the revert.
 */
export function startRevert(work: StateWork, plan: PlanSpec, failed: DeploymentRecord, iso: string, opts: { inventory?: InventorySpec; by?: string; message?: string } = {}): { plan: PlanSpec; revert: DeploymentRecord } {
  const fromSpec = failed.fromSpec!;
  const back: PlanSpec = { ...plan, groups: plan.groups.map((x) => (x.name === failed.group ? fromSpec : x)) };
  const rec = work.plans.get(plan.name);
  if (rec?.spec) work.plans.put({ ...rec, spec: { ...rec.spec, groups: rec.spec.groups.map((x) => (x.name === failed.group ? fromSpec : x)) } });
  const id = newDeploymentId();
  const base = opts.inventory ? policyOf(back, fromSpec, opts.inventory) : failed.policy;
  const policy: UpdatePolicy = { ...base, canary: 0, autoPromote: false, autoRevert: false };
  const revert: DeploymentRecord = {
    id, plan: failed.plan, group: failed.group, project: failed.project, fromHash: failed.toHash, toHash: specHashOf(back, fromSpec), toSpec: fromSpec, policy,
    status: 'running', promoted: true, tasks: [], old: 0, revertOf: failed.id, createdAt: iso, updatedAt: iso, progressAt: iso, ...(opts.by ? { by: opts.by } : {}),
  };
  work.deployments.put({ ...failed, status: 'reverted', revertedBy: id, updatedAt: iso, finishedAt: failed.finishedAt ?? iso, ...(opts.message ? { message: opts.message } : {}) });
  work.deployments.put(revert);
  return { plan: back, revert };
}

/** prune deletes a group's oldest ended deployments beyond KEEP_FINISHED (never `keep`). */
function prune(work: StateWork, key: string, keep: string): void {
  const ended = work.deployments.values().filter((d) => `${d.plan}/${d.group}` === key && d.id !== keep && !isActive(d)).sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  for (const d of ended.slice(KEEP_FINISHED)) work.deployments.delete(d.id);
}

function eventOf(d: DeploymentRecord, e: StepEvent): { kind: string; message: string; task?: string } {
  return { kind: e.kind, message: e.task && !e.message.startsWith(d.plan) ? `${d.plan}/${d.group} (${d.id}): ${e.message}` : e.message, ...(e.task ? { task: e.task } : {}) };
}

/** viewOf is a deployment as plan diff and apply print it. */
export function viewOf(d: DeploymentRecord, count: number, started: boolean, diff: boolean): DeploymentView {
  return {
    ...(diff ? {} : { id: d.id }),
    plan: d.plan, group: d.group, status: diff ? 'would start' : d.status, started, from: d.fromHash, to: d.toHash, tasks: count,
    old: d.old, healthy: d.tasks.filter((t) => t.state === 'healthy').length, policy: d.policy, ...(d.message ? { message: d.message } : {}),
  };
}

function mostCommon(values: string[]): string {
  const n = new Map<string, number>();
  for (const v of values) n.set(v, (n.get(v) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
}
