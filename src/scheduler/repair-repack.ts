/**
 * The repair's repack (issue 15): release this pass's movers and pack movers and admitted targets agent
 * by agent, the agents with most room first. On each agent, the set of shapes that leaves the least
 * free (Minimum Bin Slack, repair-fill.ts), then the shape best aligned with what is still free
 * (DotProduct, Panigrahy et al., "Heuristics for Vector Bin Packing", 2011) until none fits. A mover
 * left over takes admitted targets back off the agent where the least has to go. Adopted only if every
 * mover is placed again and some admitted target is placed too, else rolled back exactly; on adoption a
 * mover keeps its agent where the new packing has a task of its kind there.
 */
import type { PlacementRequest } from './reconcile.js';
import type { Shape } from './repair-fill.js';
import { minimumBinSlack } from './repair-fill.js';
import type { Kind, Pending, RepairState } from './repair-state.js';
import { fitsIn } from './repair-state.js';
import { RESOURCE_EPSILON } from './resources.js';

/** Assigned is one task the repack put on an agent: a mover's kind (`opt` false) or an admitted target's; kind -1 once taken back. */
interface Assigned {
  kind: number;
  slot: number;
  opt: boolean;
}

/**
 * repack releases every mover and packs movers and targets agent by agent: on each agent, the set of
 * tasks that leaves the least free (a bounded depth-first search over shapes, largest first: Minimum
 * Bin Slack), then the task whose demand best matches what is still free (DotProduct) until none fits.
 * Returns the targets it placed, or undefined after rolling back when it placed none, a mover found
 * no place or the budget ran out.
 */
export function repack(st: RepairState, pending: readonly Pending[]): Set<PlacementRequest> | undefined {
  const K = st.kinds.length;
  const D = st.D;
  const mustLeft = new Int32Array(K);
  const optLeft = new Int32Array(K);
  const optQueue: PlacementRequest[][] = Array.from({ length: K }, () => []);
  for (const m of st.movers) mustLeft[m.kind] = (mustLeft[m.kind] ?? 0) + 1;
  for (const p of pending) {
    optLeft[p.kind] = (optLeft[p.kind] ?? 0) + 1;
    optQueue[p.kind]?.push(p.request);
  }
  // Shapes: kinds with one demand, cluster and static verdict, and no per-agent rule or quota, pack as one.
  const shapes: Shape[] = [];
  const shapeByKey = new Map<string, number>();
  const used = new Uint8Array(D);
  for (let k = 0; k < K; k++) {
    const kind = st.kinds[k];
    if (!kind || (mustLeft[k] ?? 0) + (optLeft[k] ?? 0) === 0) continue;
    for (const d of kind.asked) used[d] = 1;
    const simple = kind.group.maxPerAgent === undefined && kind.group.resources.ports.length === 0 && !st.host.projects[kind.project]?.quota;
    const key = simple ? `${kind.cluster}|${kind.demand.join(',')}|${kind.rejections.map((r) => (r ? 0 : 1)).join('')}` : `#${k}`;
    const at = shapeByKey.get(key);
    if (at !== undefined) shapes[at]?.kinds.push(k);
    else {
      shapeByKey.set(key, shapes.length);
      shapes.push({ kinds: [k], rep: kind });
    }
  }
  const S = shapes.length;
  const shapeLeft = new Int32Array(S);
  shapes.forEach((sh, i) => (shapeLeft[i] = sh.kinds.reduce((n, k) => n + (mustLeft[k] ?? 0) + (optLeft[k] ?? 0), 0)));
  st.releaseMovers();
  // Agents of the involved clusters, most free first (relative to their size).
  const clusters = new Set(st.kinds.map((k) => k.cluster));
  const agents: number[] = [];
  const room: number[] = [];
  for (let i = 0; i < st.ledger.slots.length; i++) {
    if (!clusters.has(st.clusterOf[i] ?? -1) || st.ledger.slots[i]?.agent.state !== 'ready') continue;
    let r = 0;
    for (let d = 0; d < D; d++) {
      const cap = st.ledger.allocatable[i * D + d] ?? 0;
      if (cap > 0 && used[d]) r += (st.ledger.free[i * D + d] ?? 0) / cap;
    }
    agents.push(i);
    room[i] = r;
  }
  agents.sort((a, b) => (room[b] ?? 0) - (room[a] ?? 0) || a - b);
  const assigned: Assigned[] = [];
  /** take places one task of a shape on agent a (a mover first, else a target within quota); false when none may go there. */
  const take = (sh: number, a: number): boolean => {
    const shape = shapes[sh];
    if (!shape) return false;
    for (const k of shape.kinds) {
      const kind = st.kinds[k];
      const must = (mustLeft[k] ?? 0) > 0;
      if (!kind || (!must && (optLeft[k] ?? 0) === 0)) continue;
      if (!st.confirm(kind, a)) continue;
      if (!must) {
        if (st.host.shares.quotaExceeded(kind.project, kind.demand)) {
          shapeLeft[sh] = (shapeLeft[sh] ?? 0) - (optLeft[k] ?? 0);
          optLeft[k] = 0;
          continue;
        }
        st.host.shares.add(kind.project, kind.demand, 1);
        optLeft[k] = (optLeft[k] ?? 0) - 1;
      } else mustLeft[k] = (mustLeft[k] ?? 0) - 1;
      shapeLeft[sh] = (shapeLeft[sh] ?? 0) - 1;
      st.reserve(kind, a);
      assigned.push({ kind: k, slot: a, opt: !must });
      return true;
    }
    return false;
  };
  const scratch = { work: new Float64Array(D), count: new Int32Array(S) };
  const cand: number[] = [];
  const size: number[] = [];
  let aborted = false;
  for (const a of agents) {
    // Minimum Bin Slack: the set of shapes leaving the least free, largest shapes tried first.
    cand.length = 0;
    for (let sh = 0; sh < S; sh++) {
      const shape = shapes[sh];
      st.evaluations += 1;
      if (!shape || (shapeLeft[sh] ?? 0) <= 0 || !st.allowed(shape.rep, a) || !st.fits(shape.rep, a)) continue;
      size[sh] = st.size(shape.rep, a);
      cand.push(sh);
    }
    cand.sort((x, y) => (size[y] ?? 0) - (size[x] ?? 0) || x - y);
    for (const sh of minimumBinSlack(st, a, shapes, cand, shapeLeft, used, scratch)) take(sh, a);
    // Top up: the best-aligned shape that still fits, until none does.
    let blocked: Set<number> | undefined;
    for (;;) {
      let bestShape = -1;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (const sh of cand) {
        const rep = shapes[sh]?.rep;
        if (!rep || (shapeLeft[sh] ?? 0) <= 0 || blocked?.has(sh)) continue;
        st.evaluations += 1;
        if (!st.fits(rep, a)) continue;
        const score = st.dot(rep, a);
        if (score > bestScore + 1e-12) {
          bestScore = score;
          bestShape = sh;
        }
      }
      if (bestShape < 0) break;
      if (!take(bestShape, a)) (blocked ??= new Set()).add(bestShape);
    }
    if (st.spent()) {
      aborted = true;
      break;
    }
  }
  // Movers left over (when capacity is short the pool holds more than fits): make room by taking
  // admitted tasks back off an agent, the one where the least has to go.
  for (let k = 0; k < K && !aborted; k++) {
    const kind = st.kinds[k];
    while (kind && (mustLeft[k] ?? 0) > 0 && !st.spent()) {
      const a = roomFor(st, kind, assigned);
      if (a < 0) break;
      evictFor(st, kind, a, assigned, (x) => {
        const xk = st.kinds[x.kind];
        if (!xk) return;
        st.release(xk, x.slot);
        st.host.shares.add(xk.project, xk.demand, -1);
        optLeft[x.kind] = (optLeft[x.kind] ?? 0) + 1;
      });
      if (!st.fits(kind, a) || !st.confirm(kind, a)) break;
      mustLeft[k] = (mustLeft[k] ?? 0) - 1;
      st.reserve(kind, a);
      assigned.push({ kind: k, slot: a, opt: false });
    }
  }
  // Moving tasks only pays when it places more: otherwise, and when a mover found no place, roll back.
  if (aborted || mustLeft.some((n) => n > 0) || !assigned.some((x) => x.opt && x.kind >= 0)) {
    for (const x of assigned) {
      const k = st.kinds[x.kind];
      if (!k) continue; // taken back already
      st.release(k, x.slot);
      if (x.opt) st.host.shares.add(k.project, k.demand, -1);
    }
    st.reserveMovers();
    return undefined;
  }
  // Adopt: movers keep their agent where the new packing has a task of their kind there.
  const slotsOf: Map<number, number>[] = Array.from({ length: K }, () => new Map());
  const opts: Assigned[] = [];
  for (const x of assigned) {
    if (x.kind < 0) continue; // taken back
    if (x.opt) {
      opts.push(x);
      continue;
    }
    const m = slotsOf[x.kind];
    m?.set(x.slot, (m.get(x.slot) ?? 0) + 1);
  }
  const homeless: number[] = [];
  st.movers.forEach((m, i) => {
    const free = slotsOf[m.kind];
    const n = free?.get(m.slot) ?? 0;
    if (n > 0) free?.set(m.slot, n - 1);
    else homeless.push(i);
  });
  for (const i of homeless) {
    const m = st.movers[i];
    const free = m ? slotsOf[m.kind] : undefined;
    if (!m || !free) continue;
    for (const [slot, n] of free) {
      if (n <= 0) continue;
      free.set(slot, n - 1);
      st.relocate(i, slot);
      break;
    }
  }
  const done = new Set<PlacementRequest>();
  for (const x of opts) {
    const k = st.kinds[x.kind];
    const request = optQueue[x.kind]?.shift();
    const slot = st.ledger.slots[x.slot];
    if (!k || !request || !slot) continue;
    st.release(k, x.slot);
    st.host.shares.add(k.project, k.demand, -1);
    st.commitMover(request, x.kind, x.slot, slot.agent);
    done.add(request);
  }
  st.version += 1;
  return done;
}

/** roomFor is the agent where a kind fits after taking back the fewest admitted tasks (by size), or -1. */
function roomFor(st: RepairState, kind: Kind, assigned: Assigned[]): number {
  const optOn = new Map<number, number[]>();
  assigned.forEach((x, i) => {
    if (!x.opt || x.kind < 0) return;
    const list = optOn.get(x.slot);
    if (list) list.push(i);
    else optOn.set(x.slot, [i]);
  });
  let best = -1;
  let bestCost = Number.POSITIVE_INFINITY;
  const row = new Float64Array(st.D);
  for (const a of st.hostsOf(st.kinds.indexOf(kind))) {
    st.evaluations += 1;
    for (let d = 0; d < st.D; d++) row[d] = st.ledger.free[a * st.D + d] ?? 0;
    let cost = 0;
    for (const i of optOn.get(a) ?? []) {
      const x = st.kinds[assigned[i]?.kind ?? -1];
      if (!x) continue;
      for (const d of x.asked) row[d] = (row[d] ?? 0) + (x.demand[d] ?? 0);
    }
    if (!fitsIn(kind, row, 0)) continue;
    // Cost: how short the agent is now, relative to its size (0 when the kind fits already).
    for (const d of kind.asked) {
      const cap = st.ledger.allocatable[a * st.D + d] ?? 0;
      const short = (kind.demand[d] ?? 0) - (st.ledger.free[a * st.D + d] ?? 0);
      if (short > 0 && cap > 0) cost += short / cap;
    }
    if (cost < bestCost - 1e-12) {
      bestCost = cost;
      best = a;
    }
    if (cost === 0) break;
  }
  return best;
}

/** evictFor takes admitted tasks back off agent a, largest first, until the kind fits there. */
function evictFor(st: RepairState, kind: Kind, a: number, assigned: Assigned[], release: (x: Assigned) => void): void {
  const on = assigned.filter((x) => x.opt && x.kind >= 0 && x.slot === a);
  const size = (x: Assigned) => {
    return st.size(st.kinds[x.kind], a);
  };
  on.sort((x, y) => size(y) - size(x));
  for (const x of on) {
    if (st.fits(kind, a)) return;
    // Only take back a task that frees something the kind is short of.
    let helps = false;
    const xk = st.kinds[x.kind];
    for (const d of kind.asked) if ((kind.demand[d] ?? 0) > (st.ledger.free[a * st.D + d] ?? 0) + RESOURCE_EPSILON && (xk?.demand[d] ?? 0) > 0) helps = true;
    if (!helps) continue;
    release(x);
    x.kind = -1;
  }
}
