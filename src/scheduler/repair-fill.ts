/**
 * The repack's fill of one agent (issue 15): Minimum Bin Slack, the set of shapes that leaves the least
 * free on the agent, by a depth-first search over the shapes largest first, bounded by
 * MBS_NODES_PER_AGENT nodes and kept inside the cone of ratios the shapes on offer span (a remainder
 * outside it cannot be filled exactly, so the search does not go deeper there). It only chooses: the
 * repack (repair-repack.ts) places what it returns.
 */
import type { Kind, RepairState } from './repair-state.js';
import { fitsIn } from './repair-state.js';
import { RESOURCE_EPSILON } from './resources.js';

/** MBS_NODES_PER_AGENT bounds the repack's search for the set of tasks that fills one agent best. */
export const MBS_NODES_PER_AGENT = 400;

/** Shape is kinds that pack as one (one demand, cluster and static verdict, no per-agent rule or quota); `rep` stands for them. */
export interface Shape {
  kinds: number[];
  rep: Kind;
}

/** FillScratch is the buffers one repack reuses agent after agent: `work` (D dims) and `count` (one per shape, all 0 between calls). */
export interface FillScratch {
  work: Float64Array;
  count: Int32Array;
}

/**
 * minimumBinSlack is the shapes (with repeats) that leave the least free on agent a, out of `cand`
 * (shapes that fit there, largest first) with at most `shapeLeft[sh]` of each; `used` marks the dims
 * any shape asks for. Each search node counts as an evaluation.
 */
export function minimumBinSlack(st: RepairState, a: number, shapes: readonly Shape[], cand: readonly number[], shapeLeft: Int32Array, used: Uint8Array, scratch: FillScratch): number[] {
  const D = st.D;
  const row = a * D;
  const alloc = st.ledger.allocatable;
  const { work, count } = scratch;
  for (let d = 0; d < D; d++) work[d] = st.ledger.free[row + d] ?? 0;
  let slack0 = 0;
  for (let d = 0; d < D; d++) if (used[d] && (alloc[row + d] ?? 0) > 0) slack0 += (work[d] ?? 0) / (alloc[row + d] ?? 1);
  // The cone the available shapes span, per pair of dims: a remainder outside it cannot be filled exactly.
  const dims: number[] = [];
  for (let d = 0; d < D; d++) if (used[d] && (alloc[row + d] ?? 0) > 0) dims.push(d);
  const U = dims.length;
  const minD = new Float64Array(U).fill(Number.POSITIVE_INFINITY);
  const lo = new Float64Array(U * U).fill(Number.POSITIVE_INFINITY);
  const hi = new Float64Array(U * U).fill(Number.NEGATIVE_INFINITY);
  for (const sh of cand) {
    const dem = shapes[sh]?.rep.demand;
    if (!dem) continue;
    for (let x = 0; x < U; x++) {
      const di = dem[dims[x] ?? 0] ?? 0;
      if (di > 0) minD[x] = Math.min(minD[x] ?? 0, di);
      for (let y = 0; y < U; y++) {
        if (x === y) continue;
        const dj = dem[dims[y] ?? 0] ?? 0;
        const r = di > 0 ? dj / di : dj > 0 ? Number.POSITIVE_INFINITY : Number.NaN;
        if (Number.isNaN(r)) continue;
        lo[x * U + y] = Math.min(lo[x * U + y] ?? 0, r);
        hi[x * U + y] = Math.max(hi[x * U + y] ?? 0, r);
      }
    }
  }
  const fillable = (): boolean => {
    for (let x = 0; x < U; x++) {
      const wi = work[dims[x] ?? 0] ?? 0;
      if (wi <= RESOURCE_EPSILON) continue;
      if (wi < (minD[x] ?? 0) - RESOURCE_EPSILON) return false;
      for (let y = 0; y < U; y++) {
        if (x === y) continue;
        const wj = Math.max(0, work[dims[y] ?? 0] ?? 0);
        const r = wj / wi;
        const eps = RESOURCE_EPSILON / wi + 1e-9;
        if (r < (lo[x * U + y] ?? 0) - eps || r > (hi[x * U + y] ?? 0) + eps) return false;
      }
    }
    return true;
  };
  let bestSlack = slack0;
  let best: number[] = [];
  const pick: number[] = [];
  let nodes = 0;
  const dfs = (from: number, slack: number): void => {
    if (slack < bestSlack - 1e-9) {
      bestSlack = slack;
      best = pick.slice();
    }
    for (let j = from; j < cand.length; j++) {
      if (bestSlack <= 1e-9 || nodes >= MBS_NODES_PER_AGENT) return;
      const sh = cand[j] ?? 0;
      const rep = shapes[sh]?.rep;
      if (!rep || (count[sh] ?? 0) >= (shapeLeft[sh] ?? 0)) continue;
      nodes += 1;
      if (!fitsIn(rep, work, 0)) continue;
      const z = st.size(rep, a);
      for (const d of rep.asked) work[d] = (work[d] ?? 0) - (rep.demand[d] ?? 0);
      count[sh] = (count[sh] ?? 0) + 1;
      pick.push(sh);
      if (fillable()) dfs(j, slack - z);
      else if (slack - z < bestSlack - 1e-9) {
        bestSlack = slack - z;
        best = pick.slice();
      }
      pick.pop();
      count[sh] = (count[sh] ?? 0) - 1;
      for (const d of rep.asked) work[d] = (work[d] ?? 0) + (rep.demand[d] ?? 0);
    }
  };
  dfs(0, slack0);
  st.evaluations += nodes;
  return best;
}
