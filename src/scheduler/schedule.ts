/**
 * schedule(): snapshot + desired state + seed in, plan out. Pure: no I/O, no clock, no Math.random.
 *
 *   reconcile (reconcile.ts) → reserve other plans, keeps, held replacements and running resource plans
 *   → everyAgent tasks on their agents → units (one per group), largest dominant share first
 *   → each unit to the end, or DRF between projects task by task when capacity is short (fairness.ts)
 *   → per unit: a resource plan whole (resource-plans.ts) or each task through the placement pipeline
 *     (pipeline.ts: quota → preferred → level 1 → candidates → score → select → reference chain)
 *   → repair when tasks are left unplaced (repair.ts: move this pass's own placements to make room)
 *   → name new everyAgent tasks → stranded capacity (stranded.ts) → plan.
 * The pass's working state (reservations, keeps, stops, placements) is a SchedulingPass (pass.ts).
 */
import { capacityIsShort, placeByDrf } from './fairness.js';
import { compareKeys, groupKey } from './ledger.js';
import { SchedulingPass } from './pass.js';
import type { Placed, Unit } from './pass.js';
import type { PlacementRequest } from './reconcile.js';
import { parseTaskIndex, reconcile, taskId, isLive } from './reconcile.js';
import { repairPacking } from './repair.js';
import { isResourcePlan, placeResourcePlan } from './resource-plans.js';
import { copyResources, dominantShare } from './resources.js';
import { demandsOfPass, strandedCapacity } from './stranded.js';
import type { ActualTask, DesiredGroup, Placement, ResourceVector, SchedulePlan, SchedulerInput, TaskResources } from './types.js';

/** schedule turns a cluster snapshot and the desired state of some plans into a SchedulePlan. */
export function schedule(input: SchedulerInput): SchedulePlan {
  const projects = input.projects ?? {};
  const applied = new Set([...input.plans, ...input.groups.map((g) => g.plan)]);
  const splitGroups = new Map<string, DesiredGroup>();
  for (const g of input.groups) if (isResourcePlan(g) && !splitGroups.has(groupKey(g))) splitGroups.set(groupKey(g), g);
  const splitActual = new Map<string, ActualTask[]>();
  const restActual: ActualTask[] = [];
  for (const t of input.actual) {
    const key = groupKey(t);
    if (applied.has(t.plan) && splitGroups.has(key)) {
      const list = splitActual.get(key);
      if (list) list.push(t);
      else splitActual.set(key, [t]);
    } else restActual.push(t);
  }
  const scalars = new Set<string>();
  for (const g of input.groups) for (const k of Object.keys(g.resources.scalars)) scalars.add(k);
  for (const t of input.actual) for (const k of Object.keys(t.resources.scalars)) scalars.add(k);

  const s = new SchedulingPass(input, input.agents, scalars, projects);
  const ledger = s.ledger;
  const counted = input.groups.filter((g) => !splitGroups.has(groupKey(g)));
  const rec = reconcile({ ...input, groups: counted, actual: restActual, plans: [...applied] }, ledger);
  s.keep.push(...rec.keep);
  s.stop.push(...rec.stop);

  for (const t of rec.others) s.hold(t.agent, groupKey(t), t.project, t.resources);
  for (const t of rec.keep) {
    s.hold(t.agent, groupKey(t), t.project, t.resources);
    s.noteCluster(t);
  }
  for (const r of rec.requests) {
    if (r.replaces) s.noteCluster(r.replaces);
    if (r.holdsResources && r.replaces) s.hold(r.replaces.agent, groupKey(r.replaces), r.replaces.project, r.replaces.resources);
  }
  for (const [key, tasks] of splitActual) {
    for (const t of tasks) if (isLive(t.state) && ledger.slot(t.agent)) s.hold(t.agent, key, t.project, t.resources);
  }

  // everyAgent tasks go to their agents first.
  const total = ledger.totalAllocatable();
  const pinned = rec.requests.filter((r) => r.pinnedAgent !== undefined);
  for (const r of orderRequests(pinned, total)) s.placePinned(r);

  // One unit per group: counted groups with their requests in index order, resource plans whole.
  const units = new Map<string, Unit>();
  for (const r of rec.requests) {
    if (r.pinnedAgent !== undefined) continue;
    const key = groupKey(r.group);
    let u = units.get(key);
    if (!u) units.set(key, (u = { group: r.group, requests: [], next: 0, share: dominantShare(r.group.resources, total) }));
    u.requests.push(r);
  }
  // reconcile emits each group's requests in index order already.
  for (const [key, g] of splitGroups) {
    units.set(key, { group: g, requests: [], next: 0, share: dominantShare({ cpus: g.total?.cpus ?? 0, mem: 0, disk: 0, gpus: 0, scalars: {} }, total), existing: splitActual.get(key) ?? [] });
  }
  const ordered = [...units.values()].sort((a, b) => (a.share !== b.share ? (a.share > b.share ? -1 : 1) : compareKeys(groupKey(a.group), groupKey(b.group))));
  const run = (u: Unit): boolean => {
    if (isResourcePlan(u.group)) {
      placeResourcePlan(s, u);
      return true;
    }
    s.placeCounted(u);
    return u.next >= u.requests.length;
  };
  const demands = ordered.map((u) =>
    isResourcePlan(u.group) ? { vector: ledger.vectorOf({ cpus: u.group.total?.cpus ?? 0 }), count: 1 } : { vector: s.vec(u.group.resources), count: u.requests.length },
  );
  if (capacityIsShort(ledger, demands)) placeByDrf(ordered, s.shares, run);
  else for (const u of ordered) while (!run(u));

  // Repair point: the batch is placed (level 1 and level 2 of every unit). Tasks left unplaced: move this
  // pass's own placements to make room, within a bounded count of evaluations (repair.ts).
  if (s.unplaced.length > 0) repairPacking(s, rec.requests);

  const create = namePlacements(s.placed, rec.usedIndices);
  const stop = s.stop;
  return {
    create,
    stop,
    keep: s.keep,
    unplaced: s.unplaced,
    changes: {
      create: create.filter((p) => p.reason !== 'update').length,
      destroy: stop.filter((x) => x.reason === 'removed' || x.reason === 'scaled-down' || x.reason === 'destroy').length,
      update: create.filter((p) => p.reason === 'update').length,
    },
    stranded: strandedCapacity(ledger, demandsOfPass(ledger, input.groups, (r) => s.vec(r))),
    groups: s.pipeline.decisions.sort((a, b) => compareKeys(`${a.plan}/${a.group}`, `${b.plan}/${b.group}`)),
  };
}

/**
 * orderRequests sorts placement requests: pinned ones (everyAgent) first by group and agent, then the
 * rest by larger dominant share first, then plan, group and index — large tasks first packs better.
 */
export function orderRequests(requests: readonly PlacementRequest[], total: ResourceVector): PlacementRequest[] {
  const share = new Map<PlacementRequest, number>();
  for (const r of requests) share.set(r, dominantShare(r.group.resources, total));
  const index = (r: PlacementRequest): number => (r.task === undefined ? -1 : (parseTaskIndex(r.task, r.group) ?? -1));
  return [...requests].sort((a, b) => {
    const pa = a.pinnedAgent !== undefined ? 0 : 1;
    const pb = b.pinnedAgent !== undefined ? 0 : 1;
    if (pa !== pb) return pa - pb;
    if (pa === 1) {
      const sa = share.get(a) ?? 0;
      const sb = share.get(b) ?? 0;
      if (sa !== sb) return sa > sb ? -1 : 1;
    }
    return (
      compareKeys(groupKey(a.group), groupKey(b.group)) ||
      compareKeys(a.pinnedAgent ?? '', b.pinnedAgent ?? '') ||
      index(a) - index(b)
    );
  });
}

/** namePlacements builds the Placements, giving new everyAgent tasks the lowest free indices in agent-name order. */
function namePlacements(placed: readonly Placed[], usedIndices: Map<string, Set<number>>): Placement[] {
  const unnamed = placed.filter((p) => p.request.task === undefined).sort((a, b) =>
    compareKeys(groupKey(a.request.group), groupKey(b.request.group)) || compareKeys(a.agent.name, b.agent.name),
  );
  const names = new Map<Placed, string>();
  for (const p of unnamed) {
    const key = groupKey(p.request.group);
    let used = usedIndices.get(key);
    if (!used) usedIndices.set(key, (used = new Set()));
    let i = 0;
    while (used.has(i)) i++;
    used.add(i);
    names.set(p, taskId(p.request.group, i));
  }
  // Tasks of one group share one copy of its resources (100k placements, a few hundred groups).
  const copies = new Map<TaskResources, TaskResources>();
  const setCopy = (r: TaskResources): TaskResources => {
    const c = copyTaskResources(r);
    copies.set(r, c);
    return c;
  };
  return placed.map((p) => {
    const g = p.request.group;
    return {
      task: p.request.task ?? names.get(p) ?? '',
      plan: g.plan,
      group: g.group,
      project: g.project,
      idc: p.agent.idc,
      cluster: p.agent.cluster,
      agent: p.agent.name,
      driver: g.driver,
      specHash: g.specHash,
      resources: copies.get(g.resources) ?? setCopy(g.resources),
      reason: p.reason,
    };
  });
}

function copyTaskResources(r: TaskResources): TaskResources {
  return { ...copyResources(r), ports: [...r.ports] };
}
