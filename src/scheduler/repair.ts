/**
 * Repair after a batch (issue 15): when the greedy pass leaves tasks unplaced, spend a bounded number
 * of evaluations moving this pass's own placements so that more of them fit. This file is the entry:
 * it picks the targets and the movers and runs the steps, each in its own file.
 *
 *   nothing unplaced   nothing to do: the hook in schedule.ts costs one length check
 *   admit              (repair-admit.ts) the unplaced tasks the repack may place, in DRF order (the
 *                      project with the smallest weighted dominant share next), each if its cluster has
 *                      that much free in aggregate and its quota allows it: all of them when capacity is
 *                      not short
 *   repack             (repair-repack.ts, repair-fill.ts) release this pass's movable placements and
 *                      pack them with the admitted tasks agent by agent: on each agent, the set of tasks
 *                      that leaves the least free (Minimum Bin Slack: a depth-first search over shapes,
 *                      largest first, bounded per agent and kept inside the cone of ratios the remaining
 *                      shapes span, so that an exact fill stays reachable), then the task best aligned
 *                      with what is still free (DotProduct, Panigrahy et al., "Heuristics for Vector Bin
 *                      Packing", 2011) until none fits. Adopted only if every task placed before is
 *                      placed again and some admitted task is placed too, else rolled back exactly.
 *   eject              (repair-eject.ts) for each task still unplaced (project with the smallest
 *                      weighted dominant share first): an agent where moving one or two of this pass's
 *                      tasks to other agents makes room, the moved tasks going where they fit best.
 *   budget             every candidate looked at counts against the budget; when it is spent the repair
 *                      stops where it is. A count, not a clock, so a seed still gives one plan.
 *
 * The steps share one RepairState (repair-state.ts): kinds, movers, checks, reserve and release.
 * Only placements of this pass that the scheduler chose freely move: never a task that runs, an
 * everyAgent task, a task placed on its preferred agent (update, restart) or a resource-plan VM. A moved
 * task stays in the cluster level 1 chose for its group. Every placement is confirmed by the pipeline's
 * reference chain (feasibility.ts, project pinning included) before it is made, and a task added to the
 * plan must fit its project's quota.
 */
import { groupKey } from './ledger.js';
import type { PlacementRequest } from './reconcile.js';
import { admit } from './repair-admit.js';
import { ejectAll } from './repair-eject.js';
import { repack } from './repair-repack.js';
import type { Pending, RepairHost, RepairPlacement } from './repair-state.js';
import { RepairState } from './repair-state.js';
import type { DesiredGroup } from './types.js';

export { EJECT_AGENTS_PER_TASK } from './repair-eject.js';
export { MBS_NODES_PER_AGENT } from './repair-fill.js';
export type { RepairHost, RepairPlacement } from './repair-state.js';

/**
 * REPAIR_BUDGET_PER_ITEM is the repair's evaluation budget per task of the batch (placed or not) and per
 * agent: the perfectly packable instances of `npm run bench` use 6–11 (bench/packable.ts).
 */
export const REPAIR_BUDGET_PER_ITEM = 64;

/** RepairOptions tunes one repair. */
export interface RepairOptions {
  /** budget overrides the evaluation budget (default REPAIR_BUDGET_PER_ITEM × (tasks of the batch + agents)). */
  budget?: number;
}

/** RepairStats says what a repair did. */
export interface RepairStats {
  /** placed counts tasks that were unplaced and now are. */
  placed: number;
  /** moved counts placements of the pass that ended on another agent. */
  moved: number;
  evaluations: number;
  repacked: boolean;
}

/** isRepairTarget says whether an unplaced request may be placed by the repair (new tasks and reschedules that hold nothing). */
function isRepairTarget(r: PlacementRequest): boolean {
  return r.task !== undefined && r.reportIfUnplaced && r.pinnedAgent === undefined && r.preferredAgent === undefined && !(r.replaces && r.holdsResources) && !isResourcePlanGroup(r.group);
}

/** isMovable says whether a placement of the pass was chosen freely by the scheduler (so it may move). */
function isMovable(p: RepairPlacement): boolean {
  const r = p.request;
  return r.pinnedAgent === undefined && r.preferredAgent === undefined && !isResourcePlanGroup(r.group);
}

function isResourcePlanGroup(g: DesiredGroup): boolean {
  return g.total !== undefined && (g.shapes?.length ?? 0) > 0 && !g.everyAgent;
}

/** repairPacking places what it can of the pass's unplaced tasks by moving the pass's own placements. */
export function repairPacking(host: RepairHost, requests: readonly PlacementRequest[], opts: RepairOptions = {}): RepairStats {
  const stats: RepairStats = { placed: 0, moved: 0, evaluations: 0, repacked: false };
  if (host.unplaced.length === 0) return stats;
  const unplacedIds = new Set(host.unplaced.map((u) => u.task));
  const targets = requests.filter((r) => r.task !== undefined && unplacedIds.has(r.task) && isRepairTarget(r));
  if (targets.length === 0) return stats;
  const budget = opts.budget ?? REPAIR_BUDGET_PER_ITEM * (host.placed.length + host.unplaced.length + host.ledger.slots.length);
  const st = new RepairState(host, budget);
  const placedIds = run(st, targets, stats);
  if (placedIds.size > 0) {
    const keep = host.unplaced.filter((u) => !placedIds.has(u.task));
    host.unplaced.length = 0;
    host.unplaced.push(...keep);
  }
  stats.placed = placedIds.size;
  stats.moved = st.moved();
  stats.evaluations = st.evaluations;
  return stats;
}

/** run places what it can of `targets` (admit, repack, eject); returns the ids placed and sets `stats.repacked`. */
function run(st: RepairState, targets: PlacementRequest[], stats: RepairStats): Set<string> {
  const placed = new Set<string>();
  // The cluster level 1 chose for each target's group.
  const chosen = new Map<string, string>();
  for (const d of st.host.pipeline.decisions) chosen.set(`${d.plan}/${d.group}`, d.cluster);
  const pending: Pending[] = [];
  const clusters = new Set<number>();
  for (const r of targets) {
    const c = chosen.get(groupKey(r.group));
    if (c === undefined || c === '') continue;
    const kind = st.kindFor(r.group, st.clusterId(c));
    pending.push({ request: r, kind });
    clusters.add(st.kinds[kind]?.cluster ?? -1);
  }
  // Moving tasks frees no capacity: a target that does not fit its cluster's free capacity in
  // aggregate (or its quota) never fits, so when DRF admits none there is nothing to do.
  const admitted = pending.length > 0 ? admit(st, pending) : [];
  if (admitted.length === 0) return placed;
  for (const p of st.host.placed) {
    if (!isMovable(p)) continue;
    const slot = st.ledger.indexOf(p.agent.name);
    const cluster = st.clusterOf[slot] ?? -1;
    if (slot < 0 || !clusters.has(cluster)) continue;
    st.addMover(p, st.kindFor(p.request.group, cluster), slot);
  }
  for (const m of st.movers) st.origin.push(m.slot);

  let rest = pending;
  const done = repack(st, admitted);
  if (done) {
    stats.repacked = true;
    for (const r of done) if (r.task !== undefined) placed.add(r.task);
    rest = pending.filter((p) => !done.has(p.request));
  }
  ejectAll(st, rest, placed);
  return placed;
}
