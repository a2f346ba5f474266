/**
 * The repair's eject step (issue 15): for each target the repack left unplaced, the project with the
 * smallest weighted dominant share first, an agent where it fits, else one where moving one or two
 * movers to the agents that fit them best makes room (agents closest to fitting tried first). Every
 * placement is confirmed by the reference chain; a move that fails is undone exactly.
 */
import { DrfLine } from './repair-admit.js';
import type { Kind, Pending, RepairState } from './repair-state.js';
import type { PlacementRequest } from './reconcile.js';
import { RESOURCE_EPSILON } from './resources.js';

/** EJECT_AGENTS_PER_TASK is how many agents, closest to fitting first, the eject step tries per unplaced task. */
export const EJECT_AGENTS_PER_TASK = 48;

/**
 * ejectAll tries each remaining target, the project with the smallest weighted dominant share first,
 * in passes until a pass places nothing (a kind that failed is not retried until something changed).
 * The ids it places are added to `placed`.
 */
export function ejectAll(st: RepairState, rest: readonly Pending[], placed: Set<string>): void {
  const failedAt = new Map<number, number>();
  let remaining = rest;
  while (remaining.length > 0 && !st.spent()) {
    const line = new DrfLine(remaining, st.host.shares);
    const again: Pending[] = [];
    const before = placed.size;
    while (!st.spent()) {
      const next = line.next();
      if (!next) break;
      if (failedAt.get(next.kind) !== st.version && eject(st, next.request, next.kind)) placed.add(next.request.task ?? '');
      else {
        failedAt.set(next.kind, st.version);
        again.push(next);
      }
    }
    if (placed.size === before) break;
    remaining = again;
  }
}

/** eject places one target: where it fits, else on an agent emptied enough by moving one or two movers away. */
function eject(st: RepairState, request: PlacementRequest, kindIndex: number): boolean {
  const k = st.kinds[kindIndex];
  if (!k || st.host.shares.quotaExceeded(k.project, k.demand)) return false;
  const hosts = st.hostsOf(kindIndex);
  // Agents closest to fitting first.
  const near: { slot: number; gap: number }[] = [];
  for (const a of hosts) {
    st.evaluations += 1;
    if (st.fits(k, a) && st.confirm(k, a)) return place(st, request, kindIndex, a);
    const g = gap(st, k, a);
    if (Number.isFinite(g)) near.push({ slot: a, gap: g });
  }
  near.sort((x, y) => x.gap - y.gap || x.slot - y.slot);
  const deficit = new Float64Array(st.D);
  for (const { slot: a } of near.slice(0, EJECT_AGENTS_PER_TASK)) {
    if (st.spent()) return false;
    const row = a * st.D;
    for (let d = 0; d < st.D; d++) deficit[d] = Math.max(0, (k.demand[d] ?? 0) - (st.ledger.free[row + d] ?? 0));
    const here = [...(st.onAgent.get(a) ?? [])];
    // One mover away.
    const tried = new Set<number>();
    for (const i of here) {
      const m = st.movers[i];
      if (!m || tried.has(m.kind)) continue;
      tried.add(m.kind);
      st.evaluations += 1;
      if (!covers(st, deficit, m.kind, -1)) continue;
      if (moveOutAndPlace(st, request, kindIndex, a, [i])) return true;
    }
    // Two movers away.
    const pairs = new Set<string>();
    for (let x = 0; x < here.length; x++) {
      for (let y = x + 1; y < here.length; y++) {
        const i = here[x] ?? 0;
        const j = here[y] ?? 0;
        const mi = st.movers[i];
        const mj = st.movers[j];
        if (!mi || !mj) continue;
        const pk = mi.kind < mj.kind ? `${mi.kind},${mj.kind}` : `${mj.kind},${mi.kind}`;
        if (pairs.has(pk)) continue;
        pairs.add(pk);
        st.evaluations += 1;
        if (!covers(st, deficit, mi.kind, mj.kind)) continue;
        if (moveOutAndPlace(st, request, kindIndex, a, [i, j])) return true;
        if (st.spent()) return false;
      }
    }
  }
  return false;
}

/** gap is how far an agent is from fitting a kind (sum over short dims, relative), Infinity if it cannot host the kind at all. */
function gap(st: RepairState, k: Kind, slot: number): number {
  const row = slot * st.D;
  let g = 0;
  for (let j = 0; j < k.asked.length; j++) {
    const d = k.asked[j] ?? 0;
    const cap = st.ledger.allocatable[row + d] ?? 0;
    const need = k.demand[d] ?? 0;
    if (need > cap + RESOURCE_EPSILON) return Number.POSITIVE_INFINITY;
    const short = need - (st.ledger.free[row + d] ?? 0);
    if (short > 0) g += short / cap;
  }
  return g;
}

/** covers says whether removing tasks of kinds a (and b, unless -1) frees at least `deficit` in every dim. */
function covers(st: RepairState, deficit: Float64Array, a: number, b: number): boolean {
  const ka = st.kinds[a];
  const kb = b >= 0 ? st.kinds[b] : undefined;
  if (!ka) return false;
  for (let d = 0; d < st.D; d++) {
    const need = deficit[d] ?? 0;
    if (need <= 0) continue;
    if ((ka.demand[d] ?? 0) + (kb?.demand[d] ?? 0) + RESOURCE_EPSILON < need) return false;
  }
  return true;
}

/**
 * moveOutAndPlace moves the given movers off agent `a` to the agents that fit them best, then places
 * the target on `a`. Everything is confirmed by the reference chain; on any failure all is undone.
 */
function moveOutAndPlace(st: RepairState, request: PlacementRequest, kindIndex: number, a: number, out: number[]): boolean {
  const k = st.kinds[kindIndex];
  if (!k) return false;
  for (const i of out) {
    const mk = st.moverKind(i);
    if (mk) st.release(mk, a);
  }
  const undo = (moved: { i: number; to: number }[]) => {
    for (const { i, to } of moved) {
      const mk = st.moverKind(i);
      if (mk) st.release(mk, to);
    }
    for (const i of out) {
      const mk = st.moverKind(i);
      if (mk) st.reserve(mk, a);
    }
  };
  if (!st.fits(k, a) || !st.confirm(k, a)) {
    undo([]);
    return false;
  }
  // Hold the target's room while the movers look for theirs.
  st.reserve(k, a);
  const moved: { i: number; to: number }[] = [];
  for (const i of out) {
    const m = st.movers[i];
    // Only the first mover sees the pass's state (bar agent a), so only its failure may be cached.
    const to = m ? bestHost(st, m.kind, a, moved.length === 0) : -1;
    const mk = st.moverKind(i);
    if (!m || !mk || to < 0) {
      st.release(k, a);
      undo(moved);
      return false;
    }
    st.reserve(mk, to);
    moved.push({ i, to });
  }
  st.release(k, a);
  for (const { i, to } of moved) st.relocate(i, to);
  return place(st, request, kindIndex, a);
}

/** bestHost is the agent (not `except`) that fits a kind with the least left over, or -1. */
function bestHost(st: RepairState, kindIndex: number, except: number, cache: boolean): number {
  const k = st.kinds[kindIndex];
  if (!k || st.noHost.get(kindIndex) === st.version) return -1;
  let best = -1;
  let bestLeft = Number.POSITIVE_INFINITY;
  let other = false;
  for (const b of st.hostsOf(kindIndex)) {
    st.evaluations += 1;
    if (!st.fits(k, b)) continue;
    if (b === except) {
      other = true;
      continue;
    }
    const left = st.leftover(k, b);
    if (left < bestLeft - 1e-12 && st.confirm(k, b)) {
      bestLeft = left;
      best = b;
    }
  }
  if (best < 0 && !other && cache) st.noHost.set(kindIndex, st.version);
  return best;
}

/** place commits a target on an agent and makes it a mover. */
function place(st: RepairState, request: PlacementRequest, kindIndex: number, a: number): boolean {
  const slot = st.ledger.slots[a];
  if (!slot) return false;
  st.commitMover(request, kindIndex, a, slot.agent);
  st.version += 1;
  return true;
}
