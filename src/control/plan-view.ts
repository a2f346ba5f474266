/**
 * The documents `plan diff` and `plan apply` print (`--json`, and the tables made from them): a
 * SchedulePlan turned into placements, stops and unplaced tasks, sorted by task id.
 */
import type { InventorySpec, PlanSpec } from '../spec/model.js';
import type { GroupDecision, SchedulePlan, TaskResources } from '../scheduler/types.js';
import type { AgentPool } from './agents.js';
import type { DeploymentView } from '../deploy/pass.js';
import { sortByTaskId } from './task-order.js';

/** ResourcesView is a task's resources as printed in JSON: mem and disk in bytes, scalars inline. */
export type ResourcesView = { cpus: number; mem: number; disk: number; gpus: number; ports: number[] } & Record<string, number | number[]>;

/** PlacementView is one task of the applied plans and where it runs or will run. */
export interface PlacementView {
  task: string;
  group: string;
  plan: string;
  project: string;
  idc: string;
  cluster: string;
  agent: string;
  driver: string;
  resources: ResourcesView;
  /** action is what apply does with it: create, restart, update, reschedule, or keep. */
  action: 'create' | 'restart' | 'update' | 'reschedule' | 'keep';
  /** restartAt is set on a kept dead task whose restart waits for its restart backoff: when it is due. */
  restartAt?: string;
}

/** StopView is one task apply stops. */
export interface StopView {
  task: string;
  group: string;
  plan: string;
  agent: string;
  reason: string;
}

/** UnplacedView is one task that fits nowhere, with the reason. */
export interface UnplacedView {
  task: string;
  group: string;
  plan: string;
  project: string;
  reason: string;
  causes: Record<string, number>;
}

/** DiffResult is the `plan diff --json` document. */
export interface DiffResult {
  changes: { create: number; destroy: number; update: number };
  placements: PlacementView[];
  unplaced: UnplacedView[];
  stops: StopView[];
  plans: { name: string; project: string; file: string }[];
  inventory: string;
  offline: boolean;
  agents: { name: string; state: string; error?: string }[];
  warnings: string[];
  /** stranded is free capacity per resource on agents where no task of these plans fits (mem and disk in bytes). */
  stranded: Record<string, number>;
  /** groups is where each group went (level 1: idc + cluster) and, for resource plans, the split (level 2). */
  groups: GroupDecision[];
  /**
   * deployments are the rollouts of the plans' changed groups (src/deploy): started by this apply, going
   * on, or ended without finishing; in a diff, those apply would start. Absent: none. The placements
   * and changes above say where the plans converge to; a deployment replaces those tasks step by step.
   */
  deployments?: DeploymentView[];
}

/** OpResult is the outcome of one executor call during apply or destroy. */
export interface OpResult {
  task: string;
  agent: string;
  action: 'start' | 'stop';
  ok: boolean;
  state?: string;
  pid?: number;
  error?: string;
  /** crashLoop marks the restart of a crash-looping task: told by its task-crash-loop events, not an event of its own. */
  crashLoop?: boolean;
}

/** ApplyResult is the `plan apply --json` document. */
export interface ApplyResult extends DiffResult {
  results: OpResult[];
  ok: boolean;
  /** jobs are the job records the apply created, updated or removed (absent: none). */
  jobs?: { created: string[]; updated: string[]; removed: string[] };
}

/** resourcesView flattens TaskResources for output. */
export function resourcesView(r: TaskResources): ResourcesView {
  const out: Record<string, number | number[]> = { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus, ports: r.ports };
  for (const [k, v] of Object.entries(r.scalars)) out[k] = v;
  return out as ResourcesView;
}

/** diffView is the DiffResult of a schedule: what runs where, what stops, what fits nowhere, and each agent's state. */
export function diffView(inv: InventorySpec, plans: PlanSpec[], plan: SchedulePlan, offline: boolean, pool?: AgentPool, held?: ReadonlyMap<string, string>): DiffResult {
  const warnings = plans.flatMap((p) => p.warnings.map((w) => `${w.file}:${w.line}:${w.col}: ${w.path ? `${w.path}: ` : ''}${w.message}`));
  const placements: PlacementView[] = [];
  const applied = new Set(plans.map((p) => p.name));
  // by name: a re-diff of 100k running tasks on 10k agents looked each one up in the whole list
  const agents = new Map(inv.agents.map((a) => [a.name, a]));
  for (const k of plan.keep) {
    if (!applied.has(k.plan)) continue;
    const a = agents.get(k.agent);
    placements.push({
      task: k.task, group: k.group, plan: k.plan, project: k.project,
      idc: a?.idc ?? '', cluster: a?.cluster ?? '', agent: k.agent, driver: k.driver,
      resources: resourcesView(k.resources), action: 'keep',
      ...(held?.has(k.task) ? { restartAt: held.get(k.task) } : {}),
    });
  }
  for (const c of plan.create) {
    placements.push({
      task: c.task, group: c.group, plan: c.plan, project: c.project,
      idc: c.idc, cluster: c.cluster, agent: c.agent, driver: c.driver,
      resources: resourcesView(c.resources), action: c.reason === 'new' ? 'create' : c.reason,
    });
  }
  // in task order, stops too: the state's iteration order differs between a host (records in memory)
  // and a one-shot run (replayed from the journal), and the output must not
  const stops: StopView[] = sortByTaskId(
    plan.stop
      .filter((s) => s.reason !== 'update')
      .map((s) => ({ task: s.task.task, group: s.task.group, plan: s.task.plan, agent: s.task.agent, reason: s.reason })),
    (s) => s.task,
    (a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0),
  );
  return {
    changes: plan.changes,
    placements: sortByTaskId(placements, (p) => p.task),
    unplaced: plan.unplaced.map((u) => ({ task: u.task, group: u.group, plan: u.plan, project: u.project, reason: u.reason, causes: u.causes })),
    stops,
    plans: plans.map((p) => ({ name: p.name, project: p.project, file: p.file })),
    inventory: inv.file,
    offline,
    agents: inv.agents.map((a) => {
      const failed = pool?.failed.get(a.name);
      return failed ? { name: a.name, state: 'lost', error: failed.error } : { name: a.name, state: offline ? 'declared' : 'ready' };
    }),
    warnings,
    stranded: plan.stranded,
    groups: plan.groups,
  };
}
