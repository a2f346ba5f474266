/**
 * Dominant resource fairness between projects (Ghodsi et al., NSDI 2011), with weights and quotas.
 * A project's dominant share is the largest fraction of the cluster it holds in any dimension,
 * divided by its weight. When capacity is short, the next task placed is always one of the project
 * with the smallest weighted dominant share (progressive filling, as Mesos' DRF sorter keeps clients
 * sorted; placeByDrf). Tasks that already run count toward their project's share and are never moved.
 */
import type { ClusterLedger } from './ledger.js';
import { RESOURCE_EPSILON } from './resources.js';
import type { ProjectPolicy } from './types.js';

/** formatAmount prints an amount of a dimension for a sentence: bytes of mem and disk in binary units. */
export function formatAmount(dim: string, v: number): string {
  if (dim !== 'mem' && dim !== 'disk') return `${Number(v.toFixed(3))} ${dim}`;
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${Number(x.toFixed(1))}${units[i]} ${dim}`;
}

/** ProjectShares holds each project's usage over the ledger's dims, its weight and its quota. */
export class ProjectShares {
  private readonly usage = new Map<string, Float64Array>();
  private readonly quotas = new Map<string, Float64Array>();
  private readonly total: Float64Array;

  constructor(
    private readonly ledger: ClusterLedger,
    private readonly projects: Record<string, ProjectPolicy>,
    total: Float64Array,
  ) {
    this.total = total;
    for (const [name, p] of Object.entries(projects)) {
      if (!p.quota) continue;
      const q = new Float64Array(ledger.dims.length).fill(Number.POSITIVE_INFINITY);
      for (const [dim, v] of Object.entries(p.quota)) {
        if (dim === 'scalars') {
          for (const [s, amount] of Object.entries(v as Record<string, number>)) {
            const k = ledger.dimOf(s);
            if (k >= 0) q[k] = amount;
          }
        } else if (typeof v === 'number') {
          const k = ledger.dimOf(dim);
          if (k >= 0) q[k] = v;
        }
      }
      this.quotas.set(name, q);
    }
  }

  private usageOf(project: string): Float64Array {
    let u = this.usage.get(project);
    if (!u) this.usage.set(project, (u = new Float64Array(this.ledger.dims.length)));
    return u;
  }

  /** add charges (sign 1) or refunds (sign -1) a demand to a project. */
  add(project: string, demand: Float64Array, sign: 1 | -1): void {
    const u = this.usageOf(project);
    for (let k = 0; k < demand.length; k++) u[k] = (u[k] ?? 0) + sign * (demand[k] ?? 0);
  }

  /** weight is the project's DRF weight (1 when the inventory names none). */
  weight(project: string): number {
    const w = this.projects[project]?.weight;
    return w !== undefined && w > 0 ? w : 1;
  }

  /** share is the project's weighted dominant share: max over dims of usage / cluster total, over weight. */
  share(project: string): number {
    const u = this.usage.get(project);
    if (!u) return 0;
    let s = 0;
    for (let k = 0; k < u.length; k++) {
      const t = this.total[k] ?? 0;
      if (t > 0) s = Math.max(s, (u[k] ?? 0) / t);
    }
    return s / this.weight(project);
  }

  /** quotaExceeded says why adding `demand` would exceed the project's quota, or undefined when it fits. */
  quotaExceeded(project: string, demand: Float64Array): string | undefined {
    const q = this.quotas.get(project);
    if (!q) return undefined;
    const u = this.usageOf(project);
    for (let k = 0; k < q.length; k++) {
      const need = demand[k] ?? 0;
      const limit = q[k] ?? Number.POSITIVE_INFINITY;
      if (need > 0 && (u[k] ?? 0) + need > limit + 1e-6) {
        const dim = this.ledger.dims[k] ?? '';
        return `quota of project ${project} (${formatAmount(dim, limit)}) exhausted: ${formatAmount(dim, u[k] ?? 0)} in use, the task needs ${formatAmount(dim, need)}`;
      }
    }
    return undefined;
  }
}

/**
 * placeByDrf runs units of work by progressive filling: the project with the smallest weighted
 * dominant share runs its first unit's next task; `run` returns true when that unit is done.
 */
export function placeByDrf<U extends { group: { project: string } }>(ordered: readonly U[], shares: ProjectShares, run: (u: U) => boolean): void {
  const queues = new Map<string, U[]>();
  for (const u of ordered) {
    const q = queues.get(u.group.project);
    if (q) q.push(u);
    else queues.set(u.group.project, [u]);
  }
  const names = [...queues.keys()].sort();
  for (;;) {
    let pick: string | undefined;
    let least = Number.POSITIVE_INFINITY;
    for (const p of names) {
      if ((queues.get(p)?.length ?? 0) === 0) continue;
      const share = shares.share(p);
      if (share < least - 1e-12) {
        least = share;
        pick = p;
      }
    }
    if (pick === undefined) break;
    const q = queues.get(pick) ?? [];
    const u = q[0];
    if (u && run(u)) q.shift();
  }
}

/** capacityIsShort says whether the demands (a packed vector × a count each) ask for more than the ready agents have free in some dim (then DRF decides). */
export function capacityIsShort(ledger: ClusterLedger, demands: Iterable<{ vector: Float64Array; count: number }>): boolean {
  const D = ledger.dims.length;
  const free = new Float64Array(D);
  ledger.slots.forEach((slot, i) => {
    if (slot.agent.state !== 'ready') return;
    for (let k = 0; k < D; k++) free[k] = (free[k] ?? 0) + Math.max(0, ledger.free[i * D + k] ?? 0);
  });
  const demand = new Float64Array(D);
  for (const { vector, count } of demands) {
    for (let k = 0; k < D; k++) demand[k] = (demand[k] ?? 0) + (vector[k] ?? 0) * count;
  }
  for (let k = 0; k < D; k++) if ((demand[k] ?? 0) > (free[k] ?? 0) + RESOURCE_EPSILON) return true;
  return false;
}
