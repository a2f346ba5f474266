/**
 * schedule(): snapshot + desired state + seed in, plan out. Pure: no I/O, no clock, no Math.random.
 *
 *   reconcile → reserve (other plans, keeps, held replacements) → order requests → place each
 *   (reserving at once) → name new everyAgent tasks → assemble the plan and count changes.
 */
import { ClusterLedger, groupKey } from './ledger.js';
import { placeTask } from './place.js';
import type { PlacementRequest } from './reconcile.js';
import { parseTaskIndex, reconcile, taskId, isLive } from './reconcile.js';
import { copyResources, dominantShare } from './resources.js';
import { createRng } from './rng.js';
import type { AgentSnapshot, Placement, PlacementReason, ResourceVector, SchedulePlan, SchedulerInput, Stop, TaskResources, Unplaced } from './types.js';

interface Placed {
  request: PlacementRequest;
  agent: AgentSnapshot;
  reason: PlacementReason;
}

/** schedule turns a cluster snapshot and the desired state of some plans into a SchedulePlan. */
export function schedule(input: SchedulerInput): SchedulePlan {
  const ledger = new ClusterLedger(input.agents);
  const rec = reconcile(input, ledger);
  const keep = [...rec.keep];
  const stop: Stop[] = [...rec.stop];
  const unplaced: Unplaced[] = [];
  const placed: Placed[] = [];

  for (const t of rec.others) ledger.reserve(t.agent, groupKey(t), t.resources);
  for (const t of keep) ledger.reserve(t.agent, groupKey(t), t.resources);
  for (const r of rec.requests) if (r.holdsResources && r.replaces) ledger.reserve(r.replaces.agent, groupKey(r.replaces), r.replaces.resources);

  const rng = createRng(input.seed);
  for (const request of orderRequests(rec.requests, ledger.totalAllocatable())) {
    const old = request.replaces;
    if (request.holdsResources && old) ledger.release(old.agent, groupKey(old), old.resources);
    const outcome = placeTask(ledger, request.group, request, rng);
    if (outcome.placed) {
      const agent = outcome.slot.agent;
      ledger.reserve(agent.name, groupKey(request.group), request.group.resources);
      const movedRestart = request.reason === 'restart' && old !== undefined && old.agent !== agent.name;
      const reason: PlacementReason = movedRestart ? 'reschedule' : request.reason;
      placed.push({ request, agent, reason });
      const inPlaceRestart = request.reason === 'restart' && !movedRestart;
      if (old && !inPlaceRestart) stop.push({ task: old, reason: request.replaceStop ?? 'reschedule' });
      continue;
    }
    // An update that fits nowhere leaves the old version running.
    if (old && request.reason === 'update' && isLive(old.state) && request.holdsResources) {
      ledger.reserve(old.agent, groupKey(old), old.resources);
      keep.push(old);
    }
    if (request.reportIfUnplaced) {
      const g = request.group;
      unplaced.push({ task: request.task ?? `${g.plan}/${g.group}/?`, plan: g.plan, group: g.group, project: g.project, reason: outcome.reason, causes: outcome.causes });
    }
  }

  const create = namePlacements(placed, rec.usedIndices);
  return {
    create,
    stop,
    keep,
    unplaced,
    changes: {
      create: create.filter((p) => p.reason !== 'update').length,
      destroy: stop.filter((s) => s.reason === 'removed' || s.reason === 'scaled-down' || s.reason === 'destroy').length,
      update: create.filter((p) => p.reason === 'update').length,
    },
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
      cmp(groupKey(a.group), groupKey(b.group)) ||
      cmp(a.pinnedAgent ?? '', b.pinnedAgent ?? '') ||
      index(a) - index(b)
    );
  });
}

/** namePlacements builds the Placements, giving new everyAgent tasks the lowest free indices in agent-name order. */
function namePlacements(placed: readonly Placed[], usedIndices: Map<string, Set<number>>): Placement[] {
  const unnamed = placed.filter((p) => p.request.task === undefined).sort((a, b) =>
    cmp(groupKey(a.request.group), groupKey(b.request.group)) || cmp(a.agent.name, b.agent.name),
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
      resources: copyTaskResources(g.resources),
      reason: p.reason,
    };
  });
}

function copyTaskResources(r: TaskResources): TaskResources {
  return { ...copyResources(r), ports: [...r.ports] };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
