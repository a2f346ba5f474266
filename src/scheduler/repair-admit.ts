/**
 * The repair's admission in DRF order (issue 15): which unplaced targets the repack may place. The
 * project with the smallest weighted dominant share takes its next target if the target's cluster still
 * has that much free in aggregate and its quota allows it. DrfLine, the order itself, also serves the
 * eject step (repair-eject.ts).
 */
import type { ProjectShares } from './fairness.js';
import type { Pending, RepairState } from './repair-state.js';
import { fitsIn } from './repair-state.js';

/** DrfLine hands out pending targets, each time from the project with the smallest weighted dominant share (ties: the name first in order). */
export class DrfLine {
  private readonly queues = new Map<string, Pending[]>();
  private readonly names: string[];

  constructor(
    pending: readonly Pending[],
    private readonly shares: ProjectShares,
  ) {
    for (const p of pending) {
      const q = this.queues.get(p.request.group.project);
      if (q) q.push(p);
      else this.queues.set(p.request.group.project, [p]);
    }
    this.names = [...this.queues.keys()].sort();
  }

  /** next takes the next target of the project whose share is smallest now, or undefined when none is left. */
  next(): Pending | undefined {
    let pick: string | undefined;
    let least = Number.POSITIVE_INFINITY;
    for (const name of this.names) {
      if ((this.queues.get(name)?.length ?? 0) === 0) continue;
      const share = this.shares.share(name);
      if (share < least - 1e-12) {
        least = share;
        pick = name;
      }
    }
    return pick === undefined ? undefined : this.queues.get(pick)?.shift();
  }
}

/**
 * admit picks the targets the repack may place, as DRF would: the project with the smallest weighted
 * dominant share takes its next target if the target's cluster still has that much free in aggregate
 * and its quota allows it (a target that does not fit is skipped, the project stays in line). When
 * capacity is not short every target is admitted.
 */
export function admit(st: RepairState, pending: readonly Pending[]): Pending[] {
  const D = st.D;
  const shares = st.host.shares;
  const free = new Float64Array(st.clusterIds.size * D);
  st.ledger.slots.forEach((s, i) => {
    if (s.agent.state !== 'ready') return;
    const c = st.clusterOf[i] ?? 0;
    for (let d = 0; d < D; d++) free[c * D + d] = (free[c * D + d] ?? 0) + Math.max(0, st.ledger.free[i * D + d] ?? 0);
  });
  const line = new DrfLine(pending, shares);
  const out: Pending[] = [];
  for (;;) {
    const next = line.next();
    if (!next) break;
    const k = st.kinds[next.kind];
    if (!k || shares.quotaExceeded(k.project, k.demand)) continue;
    const row = k.cluster * D;
    if (!fitsIn(k, free, row)) continue;
    for (const d of k.asked) free[row + d] = (free[row + d] ?? 0) - (k.demand[d] ?? 0);
    shares.add(k.project, k.demand, 1);
    out.push(next);
  }
  // The shares were charged only to keep the order: give them back.
  for (const p of out) {
    const k = st.kinds[p.kind];
    if (k) shares.add(k.project, k.demand, -1);
  }
  return out;
}
