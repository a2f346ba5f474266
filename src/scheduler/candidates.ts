/**
 * The fast path of placement, for thousands of agents:
 *
 *   static classes   agents with the same state, idc, cluster, drivers and attributes form one class
 *                    (Borg's equivalence classes); the static checks run once per class, not per agent
 *   candidate list   per group: the agents of the chosen cluster whose class passes, as an Int32Array
 *   sample           when the list is long, score only the first `sampleSize(n)` feasible agents
 *                    (Nomad's limit); bin-pack lists put agents already in use first, so the sample
 *                    is where best fit matters. Agents found infeasible are dropped from the group's
 *                    list for the rest of the pass (reservations only shrink free capacity).
 *   hot loop         free and allocatable amounts come from the ledger's Float64Arrays
 *
 * A task is declared unplaced only after the reference chain (feasibility.ts) has rejected every agent,
 * so sampling and dropping change where tasks go, never whether a placeable task is placed.
 */
import type { Rejection } from './feasibility.js';
import { NOT_READY_CAUSE, STATIC_CHECKS, firstRejection } from './feasibility.js';
import type { ClusterLedger } from './ledger.js';
import { groupKey } from './ledger.js';
import { keepBest } from './place.js';
import { RESOURCE_EPSILON, requestedDimensions } from './resources.js';
import type { Rng } from './rng.js';
import type { DesiredGroup, ProjectPolicy } from './types.js';

/** FULL_SCAN_MAX_AGENTS is the longest candidate list scored in full; longer lists are sampled. */
export const FULL_SCAN_MAX_AGENTS = 128;

/** sampleSize is how many feasible agents are scored per placement out of n candidates: max(8, 2⌈log₂ n⌉). */
export function sampleSize(n: number): number {
  return Math.max(8, 2 * Math.ceil(Math.log2(Math.max(2, n))));
}

/** pinnedClusterRejection rejects an agent outside the clusters its project is pinned to. */
export function pinnedClusterRejection(cluster: string, project: string, policy: ProjectPolicy | undefined): Rejection | undefined {
  const pinned = policy?.clusters;
  if (!pinned || pinned.length === 0 || pinned.includes(cluster)) return undefined;
  return { cause: `project ${project} pinned to (${pinned.join(', ')})`, wording: 'agents' };
}

/** StaticClasses groups the ledger's agents into equivalence classes of identical static properties. */
export class StaticClasses {
  /** classOf is the class id of each slot. */
  readonly classOf: Int32Array;
  /** representative is one slot index per class. */
  readonly representative: number[] = [];
  /** size counts the slots of each class. */
  readonly size: number[] = [];
  private readonly evaluated = new Map<string, (Rejection | undefined)[]>();

  constructor(
    private readonly ledger: ClusterLedger,
    private readonly projects: Record<string, ProjectPolicy>,
  ) {
    this.classOf = new Int32Array(ledger.slots.length);
    const ids = new Map<string, number>();
    ledger.slots.forEach((s, i) => {
      const a = s.agent;
      const attrs = Object.keys(a.attributes).sort().map((k) => `${k}=${a.attributes[k]}`).join('\u0001');
      const key = `${a.state}\u0000${a.idc}\u0000${a.cluster}\u0000${a.drivers.join(',')}\u0000${attrs}`;
      let id = ids.get(key);
      if (id === undefined) {
        id = this.representative.length;
        ids.set(key, id);
        this.representative.push(i);
        this.size.push(0);
      }
      this.classOf[i] = id;
      this.size[id] = (this.size[id] ?? 0) + 1;
    });
  }

  private readonly byCluster = new Map<string, Map<string, number[]>>();
  // each cluster's slots in slot order and the classes among them (a class lies in one cluster)
  private clusters?: { name: string; slots: number[]; classes: Set<number> }[];

  private signature(group: DesiredGroup): string {
    return `${group.driver}|${group.project}|${JSON.stringify(group.placement ?? null)}|${group.constraints.map((c) => c.source).join('\u0001')}`;
  }

  /** candidatesByCluster returns the slots passing a group's static checks, per cluster, in slot order (cached per signature; do not mutate). */
  candidatesByCluster(group: DesiredGroup): Map<string, number[]> {
    const sig = this.signature(group);
    let out = this.byCluster.get(sig);
    if (out) return out;
    const rejections = this.rejections(group);
    if (!this.clusters) {
      const byName = new Map<string, { name: string; slots: number[]; classes: Set<number> }>();
      this.ledger.slots.forEach((s, i) => {
        const name = s.agent.cluster;
        let c = byName.get(name);
        if (!c) byName.set(name, (c = { name, slots: [], classes: new Set() }));
        c.slots.push(i);
        c.classes.add(this.classOf[i] ?? 0);
      });
      this.clusters = [...byName.values()];
    }
    // A cluster whose classes all pass shares its slot list (1,000 groups over 10k heterogeneous agents
    // have hundreds of signatures, and most constraints reject no class of most clusters); clusters
    // in the order of their first passing slot, as a scan of the slots would add them.
    const found: { name: string; list: number[] }[] = [];
    for (const c of this.clusters) {
      let passing = 0;
      for (const id of c.classes) if (rejections[id] === undefined) passing++;
      if (passing === 0) continue;
      found.push({ name: c.name, list: passing === c.classes.size ? c.slots : c.slots.filter((i) => rejections[this.classOf[i] ?? 0] === undefined) });
    }
    found.sort((a, b) => (a.list[0] ?? 0) - (b.list[0] ?? 0));
    out = new Map(found.map((f) => [f.name, f.list]));
    this.byCluster.set(sig, out);
    return out;
  }

  /** rejections returns, per class, the first static rejection for a group (readiness, driver, placement, constraints, pinning). */
  rejections(group: DesiredGroup): (Rejection | undefined)[] {
    const sig = this.signature(group);
    let out = this.evaluated.get(sig);
    if (out) return out;
    const policy = this.projects[group.project];
    out = this.representative.map((i) => {
      const slot = this.ledger.slots[i];
      if (!slot) return undefined;
      if (slot.agent.state !== 'ready') return { cause: NOT_READY_CAUSE, wording: 'bare' as const };
      return firstRejection(STATIC_CHECKS, slot, group) ?? pinnedClusterRejection(slot.agent.cluster, group.project, policy);
    });
    this.evaluated.set(sig, out);
    return out;
  }
}

/** GroupDemand is a group's per-task demand packed over the ledger's dims, for the hot loop. */
export interface GroupDemand {
  /** amount per ledger dim. */
  amount: Float64Array;
  /** asked lists the dims asked for (> 0), in the order rejections name them. */
  asked: Int32Array;
  /** scored lists the dims the scorers average over: cpus, mem and every asked dim. */
  scored: Int32Array;
}

/** groupDemandOf packs a group's task resources over the ledger's dims. */
export function groupDemandOf(ledger: ClusterLedger, group: DesiredGroup): GroupDemand {
  const amount = ledger.vectorOf(group.resources);
  const asked = requestedDimensions(group.resources).map((d) => ledger.dimOf(d));
  const scored = [...new Set(['cpus', 'mem', ...requestedDimensions(group.resources)])].map((d) => ledger.dimOf(d));
  return { amount, asked: Int32Array.from(asked), scored: Int32Array.from(scored) };
}

/** fitCount is how many more tasks of a group fit on one slot now (resources, maxPerAgent, ports), capped at `cap`. */
export function fitCount(ledger: ClusterLedger, i: number, group: DesiredGroup, demand: GroupDemand, cap: number): number {
  const D = ledger.dims.length;
  const row = i * D;
  let n = cap;
  for (let j = 0; j < demand.asked.length; j++) {
    const k = demand.asked[j] ?? 0;
    const need = demand.amount[k] ?? 0;
    if (k < 0) return 0;
    n = Math.min(n, Math.floor(((ledger.free[row + k] ?? 0) + RESOURCE_EPSILON) / need));
  }
  const slot = ledger.slots[i];
  if (!slot) return 0;
  if (group.maxPerAgent !== undefined) n = Math.min(n, group.maxPerAgent - (slot.groupCounts.get(groupKey(group)) ?? 0));
  if (group.resources.ports.length > 0) {
    for (const p of group.resources.ports) if (slot.ports.has(p)) return 0;
    n = Math.min(n, 1);
  }
  return Math.max(0, n);
}

/** GroupCandidates is one group's candidate agents in its chosen cluster, with the sampling state. */
export class GroupCandidates {
  /** list holds slot indices; entries past `length` are dropped. */
  private readonly list: Int32Array;
  private length: number;
  private readonly sampled: boolean;
  private readonly limit: number;
  private cursor = 0;
  private readonly key: string;

  constructor(
    private readonly ledger: ClusterLedger,
    private readonly group: DesiredGroup,
    private readonly demand: GroupDemand,
    candidates: Int32Array,
  ) {
    this.key = groupKey(group);
    this.sampled = candidates.length > FULL_SCAN_MAX_AGENTS;
    this.limit = this.sampled ? sampleSize(candidates.length) : candidates.length;
    if (this.sampled && group.strategy !== 'spread') {
      // Bin-pack: agents already in use first (that is where best fit has something to choose).
      const used: number[] = [];
      const idle: number[] = [];
      const D = ledger.dims.length;
      for (const i of candidates) {
        let inUse = false;
        for (let k = 0; k < D && !inUse; k++) inUse = (ledger.free[i * D + k] ?? 0) < (ledger.allocatable[i * D + k] ?? 0) - RESOURCE_EPSILON;
        (inUse ? used : idle).push(i);
      }
      this.list = Int32Array.from([...used, ...idle]);
    } else {
      this.list = Int32Array.from(candidates);
    }
    this.length = this.list.length;
  }

  /** size is the number of candidates still in the list. */
  get size(): number {
    return this.length;
  }

  /** feasible says whether the slot passes the dynamic checks (maxPerAgent, ports, resources) for one more task. */
  feasible(i: number): boolean {
    const slot = this.ledger.slots[i];
    if (!slot) return false;
    const g = this.group;
    if (g.maxPerAgent !== undefined && (slot.groupCounts.get(this.key) ?? 0) >= g.maxPerAgent) return false;
    for (const p of g.resources.ports) if (slot.ports.has(p)) return false;
    const D = this.ledger.dims.length;
    const row = i * D;
    const free = this.ledger.free;
    const { asked, amount } = this.demand;
    for (let j = 0; j < asked.length; j++) {
      const k = asked[j] ?? 0;
      if (k < 0 || (amount[k] ?? 0) > (free[row + k] ?? 0) + RESOURCE_EPSILON) return false;
    }
    return true;
  }

  /** score is the scorer of the group's strategy on packed arrays (same numbers as score.ts). */
  score(i: number): number {
    const D = this.ledger.dims.length;
    const row = i * D;
    const { scored, amount } = this.demand;
    let sum = 0;
    let n = 0;
    for (let j = 0; j < scored.length; j++) {
      const k = scored[j] ?? -1;
      if (k < 0) continue;
      const cap = this.ledger.allocatable[row + k] ?? 0;
      if (cap <= 0) continue;
      const after = (this.ledger.free[row + k] ?? 0) - (amount[k] ?? 0);
      sum += Math.min(1, Math.max(0, 1 - after / cap));
      n += 1;
    }
    const used = n === 0 ? 0 : sum / n;
    if (this.group.strategy !== 'spread') return used;
    return 1 - used - (this.ledger.slots[i]?.groupCounts.get(this.key) ?? 0);
  }

  /**
   * select returns the slot index for the group's next task, or -1 when no candidate is feasible.
   * Full lists: best score over all, ties by the Rng (drawn only on a tie). Long lists: the first
   * `limit` feasible from the cursor (bin-pack: from the start; spread: rotating), dropping infeasible ones.
   */
  select(rng: Rng, tieEpsilon: number): number {
    const best: number[] = [];
    let bestScore = Number.NEGATIVE_INFINITY;
    let found = 0;
    const list = this.list;
    let write = 0;
    let read = 0;
    const n = this.length;
    const start = this.group.strategy === 'spread' && this.sampled ? this.cursor % Math.max(1, n) : 0;
    // Rotate for spread by scanning [start, n) then [0, start); compaction only for the bin-pack form.
    if (start !== 0) {
      for (let step = 0; step < n && found < this.limit; step++) {
        const i = list[(start + step) % n] ?? 0;
        if (!this.feasible(i)) continue;
        found += 1;
        bestScore = keepBest(best, bestScore, i, this.score(i), tieEpsilon);
      }
      this.cursor = (start + 1) % Math.max(1, n);
    } else {
      for (; read < n && found < this.limit; read++) {
        const i = list[read] ?? 0;
        if (!this.feasible(i)) {
          if (!this.sampled) list[write++] = i;
          continue;
        }
        list[write++] = i;
        found += 1;
        bestScore = keepBest(best, bestScore, i, this.score(i), tieEpsilon);
      }
      if (write < read) {
        list.copyWithin(write, read, n);
        this.length = n - (read - write);
      }
      if (this.sampled && this.group.strategy === 'spread') this.cursor += 1;
    }
    if (best.length === 0) return -1;
    if (best.length === 1) return best[0] ?? -1;
    return best[rng.pick(best.length)] ?? -1;
  }
}
