/**
 * Level 1 and level 2 of a resource plan (a group with `total` and `shapes`): the whole group goes to one
 * cluster, as the fewest VMs whose shapes sum exactly to the total (split.ts), or nothing does.
 * Clusters are tried by most free cpus; a running exact split of the same spec is kept as it is.
 */
import type { SchedulingPass, Unit } from './pass.js';
import { groupKey, compareKeys } from './ledger.js';
import type { ClusterLedger } from './ledger.js';
import type { PlacementRequest } from './reconcile.js';
import { isLive, parseTaskIndex, taskId } from './reconcile.js';
import { RejectionTally } from './rejections.js';
import { RESOURCE_EPSILON } from './resources.js';
import { splitTotal } from './split.js';
import type { SplitAgent } from './split.js';
import type { ActualTask, DesiredGroup, GroupDecision, ResourcePlanRoll, TaskResources } from './types.js';

/** isResourcePlan says whether a group is a resource plan (total + shapes) rather than a count of tasks. */
export function isResourcePlan(g: DesiredGroup): boolean {
  return g.total !== undefined && (g.shapes?.length ?? 0) > 0 && !g.everyAgent;
}

/** placeResourcePlan runs level 1 and level 2 for a resource-plan unit: the whole group, or nothing. */
export function placeResourcePlan(pass: SchedulingPass, unit: Unit): void {
  const g = unit.group;
  const total = g.total?.cpus ?? 0;
  const shapes = g.shapes ?? [];
  const key = groupKey(g);
  const existing = unit.existing ?? [];
  if (g.roll) return placeRoll(pass, unit, g.roll);
  const decision: GroupDecision = { plan: g.plan, group: g.group, project: g.project, idc: '', cluster: '' };
  pass.pipeline.decisions.push(decision);
  const summarize = (vms: { cpus: number; mem: number }[]) => {
    const m = new Map<string, { cpus: number; mem: number; count: number }>();
    for (const v of vms) {
      const k = `${v.cpus}/${v.mem}`;
      const e = m.get(k);
      if (e) e.count += 1;
      else m.set(k, { cpus: v.cpus, mem: v.mem, count: 1 });
    }
    return [...m.values()].sort((a, b) => b.cpus - a.cpus || b.mem - a.mem);
  };
  // Stable: what runs already is an exact split of the same spec → keep it, move nothing.
  if (isStableSplit(g, existing, pass.ledger)) {
    for (const t of existing) pass.keep.push(t);
    const a = pass.ledger.slot(existing[0]?.agent ?? '')?.agent;
    decision.idc = a?.idc ?? '';
    decision.cluster = a?.cluster ?? '';
    decision.split = summarize(existing.map((t) => t.resources));
    decision.note = 'running split kept';
    return;
  }
  const held = existing.filter((t) => isLive(t.state) && pass.ledger.slot(t.agent));
  for (const t of held) pass.unhold(t.agent, key, t.project, t.resources);
  const failWith = (reason: string, causes: Record<string, number>) => {
    for (const t of held) {
      pass.hold(t.agent, key, t.project, t.resources);
      pass.keep.push(t);
    }
    pass.unplaced.push({ task: `${g.plan}/${g.group}/?`, plan: g.plan, group: g.group, project: g.project, reason, causes });
    pass.input.observer?.decided(false);
  };
  const totalVec = pass.ledger.vectorOf({ cpus: total });
  const quota = pass.pipeline.overQuota(g, totalVec);
  if (quota) return failWith(quota.reason, quota.causes);
  const rejections = pass.pipeline.classes.rejections(g);
  const tally = new RejectionTally();
  const byCluster = new Map<string, number[]>();
  pass.ledger.slots.forEach((s, i) => {
    const r = rejections[pass.pipeline.classes.classOf[i] ?? 0];
    if (r) return tally.add(r);
    const list = byCluster.get(s.agent.cluster);
    if (list) list.push(i);
    else byCluster.set(s.agent.cluster, [i]);
  });
  const D = pass.ledger.dims.length;
  const cpuCol = pass.ledger.dimOf('cpus');
  const freeCpus = (list: number[]) => list.reduce((sum, i) => sum + (pass.ledger.free[i * D + cpuCol] ?? 0), 0);
  const clusters = [...byCluster.entries()].sort((a, b) => freeCpus(b[1]) - freeCpus(a[1]) || compareKeys(a[0], b[0]));
  const shapeList = shapes.map((s) => s.cpus).join(', ');
  const tried: string[] = [];
  let noSum = false;
  for (const [cluster, list] of clusters) {
    const agents: SplitAgent[] = list.map((i) => ({
      id: i,
      free: ['cpus', 'mem', 'disk', 'gpus'].map((d) => pass.ledger.free[i * D + pass.ledger.dimOf(d)] ?? 0),
    }));
    const r = splitTotal(total, shapes, agents, g.maxPerAgent);
    if (!r.ok) {
      if (r.why === 'no-sum') noSum = true;
      const largest = Math.max(0, ...agents.map((a) => a.free[0] ?? 0));
      tried.push(`${cluster}: ${Number(freeCpus(list).toFixed(3))} cpus free on ${list.length} agent${list.length === 1 ? '' : 's'}, largest ${Number(largest.toFixed(3))}${r.why === 'budget' ? ', search budget spent' : ''}`);
      if (noSum) break;
      continue;
    }
    const vms = [...r.vms].sort((a, b) => (shapes[b.shape]?.cpus ?? 0) - (shapes[a.shape]?.cpus ?? 0) || (shapes[b.shape]?.mem ?? 0) - (shapes[a.shape]?.mem ?? 0) || a.agent - b.agent);
    const byIndex = new Map<number, ActualTask>();
    for (const t of existing) {
      const i = parseTaskIndex(t.task, g);
      if (i !== undefined && !byIndex.has(i)) byIndex.set(i, t);
    }
    const replaced = new Set<ActualTask>();
    vms.forEach((vm, i) => {
      const shape = shapes[vm.shape];
      const slot = pass.ledger.slots[vm.agent];
      if (!shape || !slot) return;
      const resources: TaskResources = { cpus: shape.cpus, mem: shape.mem, disk: shape.disk, gpus: shape.gpus, scalars: {}, ports: [] };
      const old = byIndex.get(i);
      const request: PlacementRequest = {
        task: taskId(g, i),
        group: { ...g, resources },
        reason: old ? 'update' : 'new',
        holdsResources: false,
        reportIfUnplaced: true,
        ...(old ? { replaces: old, replaceStop: 'update' as const } : {}),
      };
      if (old) replaced.add(old);
      pass.commit(request, slot.agent);
    });
    for (const t of existing) if (!replaced.has(t)) pass.stop.push({ task: t, reason: 'scaled-down' });
    const first = pass.ledger.slots[list[0] ?? 0]?.agent;
    decision.idc = first?.idc ?? '';
    decision.cluster = cluster;
    decision.split = summarize(vms.map((v) => shapes[v.shape] ?? { cpus: 0, mem: 0 }));
    decision.note = clusters.length > 1 ? `first of ${clusters.length} clusters (most free cpus first) with an exact split` : undefined;
    if (decision.note === undefined) delete decision.note;
    return;
  }
  const statics = tally.parts();
  const head = noSum
    ? `${total} cpus is not a sum of VMs of ${shapeList} cpus`
    : `no exact split of ${total} cpus into VMs of ${shapeList} cpus fits`;
  const where = tried.length > 0 && !noSum ? `: ${tried.join('; ')}` : clusters.length === 0 ? ': no agent passes the static checks' : '';
  failWith(`${head}${where}${statics.length > 0 ? `; ${statics.join('; ')}` : ''}`, tally.causes());
}

/**
 * placeRoll carries out one step of a resource plan's deployment: listed old VMs stop, each new VM is
 * a counted request of its own shape through the placement pipeline (quota, the checkers, level 1
 * keeping the group in its cluster, scoring); one that takes a stopped VM's index replaces it in place
 * (an update: the old VM is kept when the new one fits nowhere). Every other task is kept as it is.
 */
function placeRoll(pass: SchedulingPass, unit: Unit, roll: ResourcePlanRoll): void {
  const g = unit.group;
  const key = groupKey(g);
  const stops = new Set(roll.stop);
  const starts = new Set(roll.start.map((s) => s.index));
  const replaced = new Map<number, ActualTask>();
  const occupied = new Set<number>();
  for (const t of unit.existing ?? []) {
    const i = parseTaskIndex(t.task, g);
    if (i !== undefined && stops.has(t.task) && starts.has(i)) {
      replaced.set(i, t);
      continue;
    }
    if (stops.has(t.task)) {
      if (isLive(t.state) && pass.ledger.slot(t.agent)) pass.unhold(t.agent, key, t.project, t.resources);
      pass.stop.push({ task: t, reason: 'update' });
      continue;
    }
    if (i !== undefined) occupied.add(i);
    pass.keep.push(t);
    pass.noteCluster(t);
  }
  const { total: _total, shapes: _shapes, roll: _roll, ...counted } = g;
  for (const s of roll.start) {
    if (occupied.has(s.index)) continue; // its index is still held by a task kept as it is: never two of one id
    const old = replaced.get(s.index);
    const resources: TaskResources = { cpus: s.shape.cpus, mem: s.shape.mem, disk: s.shape.disk, gpus: s.shape.gpus, scalars: {}, ports: [] };
    const holds = old !== undefined && isLive(old.state) && pass.ledger.slot(old.agent) !== undefined;
    const request: PlacementRequest = {
      task: taskId(g, s.index),
      group: { ...counted, count: 1, resources },
      reason: old ? 'update' : 'new',
      holdsResources: holds,
      reportIfUnplaced: true,
      ...(old ? { replaces: old, replaceStop: 'update' as const, preferredAgent: old.agent } : {}),
    };
    pass.placeCounted({ group: request.group, requests: [request], next: 0, share: 0 });
  }
}

function sameShape(r: TaskResources, s: { cpus: number; mem: number; disk: number; gpus: number }): boolean {
  return Math.abs(r.cpus - s.cpus) < RESOURCE_EPSILON && r.mem === s.mem && r.disk === s.disk && r.gpus === s.gpus;
}

/** isStableSplit says whether a resource plan's running tasks are already an exact split of the same spec. */
function isStableSplit(g: DesiredGroup, existing: readonly ActualTask[], ledger: ClusterLedger): boolean {
  if (existing.length === 0) return false;
  const seen = new Set<number>();
  let sum = 0;
  for (const t of existing) {
    const state = ledger.slot(t.agent)?.agent.state;
    if (!isLive(t.state) || (state !== 'ready' && state !== 'draining') || t.specHash !== g.specHash) return false;
    if (!(g.shapes ?? []).some((s) => sameShape(t.resources, s))) return false;
    const i = parseTaskIndex(t.task, g);
    if (i === undefined || seen.has(i)) return false; // any distinct indices: a rolled split keeps those its VMs started at
    seen.add(i);
    sum += t.resources.cpus;
  }
  return Math.abs(sum - (g.total?.cpus ?? 0)) < RESOURCE_EPSILON;
}
