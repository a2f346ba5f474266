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
 *   hot loop         the dynamic checkers' and the scorer's packed forms (feasibility.ts, score.ts)
 *                    read free and allocatable amounts from the ledger's Float64Arrays
 *
 * A task is declared unplaced only after the reference chain (feasibility.ts) has rejected every agent,
 * so sampling and dropping change where tasks go, never whether a placeable task is placed.
 */
import type { CheckContext, Checker, PackedCheck } from './feasibility.js';
import { firstRejection } from './feasibility.js';
import type { ClusterLedger } from './ledger.js';
import type { Rejection } from './rejections.js';
import { RESOURCE_EPSILON } from './resources.js';
import type { Rng } from './rng.js';
import type { PackedScore } from './score.js';
import { keepBest } from './score.js';
import type { DesiredGroup, Strategy } from './types.js';

/** FULL_SCAN_MAX_AGENTS is the longest candidate list scored in full; longer lists are sampled. */
export const FULL_SCAN_MAX_AGENTS = 128;

/** sampleSize is how many feasible agents are scored per placement out of n candidates: max(8, 2⌈log₂ n⌉). */
export function sampleSize(n: number): number {
  return Math.max(8, 2 * Math.ceil(Math.log2(Math.max(2, n))));
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

  /** The checkers are the static ones of the chain, in chain order; they read only what a class shares. */
  constructor(
    private readonly ctx: CheckContext,
    private readonly checkers: readonly Checker[],
  ) {
    const ledger = ctx.ledger;
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
      this.ctx.ledger.slots.forEach((s, i) => {
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
    out = this.representative.map((i) => {
      const slot = this.ctx.ledger.slots[i];
      return slot ? firstRejection(this.checkers, this.ctx, slot, group) : undefined;
    });
    this.evaluated.set(sig, out);
    return out;
  }
}

/** GroupCandidates is one group's candidate agents in its chosen cluster, with the sampling state. */
export class GroupCandidates {
  /** list holds slot indices; entries past `length` are dropped. */
  private readonly list: Int32Array;
  private length: number;
  private readonly sampled: boolean;
  private readonly limit: number;
  private readonly spread: boolean;
  private cursor = 0;

  /** The checks are the packed forms of the group's dynamic checkers; `score` is its strategy's packed scorer. */
  constructor(
    ledger: ClusterLedger,
    strategy: Strategy,
    candidates: Int32Array,
    private readonly checks: readonly PackedCheck[],
    private readonly score: PackedScore,
  ) {
    this.spread = strategy === 'spread';
    this.sampled = candidates.length > FULL_SCAN_MAX_AGENTS;
    this.limit = this.sampled ? sampleSize(candidates.length) : candidates.length;
    if (this.sampled && !this.spread) {
      // Bin-pack: agents already in use first (that is where best fit has something to choose).
      const used: number[] = [];
      const idle: number[] = [];
      const D = ledger.dims.length;
      for (const i of candidates) {
        // an agent nothing was ever reserved on has free = allocatable: idle without looking
        let inUse = false;
        for (let k = 0; k < D && !inUse && ledger.changes[i] !== 0; k++) inUse = (ledger.free[i * D + k] ?? 0) < (ledger.allocatable[i * D + k] ?? 0) - RESOURCE_EPSILON;
        (inUse ? used : idle).push(i);
      }
      this.list = Int32Array.from([...used, ...idle]);
    } else {
      this.list = Int32Array.from(candidates);
    }
    this.length = this.list.length;
    this.changes = ledger.changes;
    this.seen = new Uint32Array(this.length);
    this.fits = new Uint8Array(this.length);
    this.scores = new Float64Array(this.length);
  }

  // Per list position, in step with `list`: the slot's ledger change count + 1 when it was last
  // evaluated (0: never), whether it was feasible then and its score. A slot nothing was reserved on or
  // released from since gives the same answers, so they are reused (most of a sample is the same
  // agents from one placement of the group to the next).
  private readonly changes: Uint32Array;
  private readonly seen: Uint32Array;
  private readonly fits: Uint8Array;
  private readonly scores: Float64Array;

  /** evaluate says whether the slot `i` at list position `pos` is feasible; its score is then `scores[pos]`. */
  private evaluate(pos: number, i: number): boolean {
    const version = (this.changes[i] ?? 0) + 1;
    if (this.seen[pos] === version) return this.fits[pos] === 1;
    const ok = this.feasible(i);
    this.seen[pos] = version;
    this.fits[pos] = ok ? 1 : 0;
    if (ok) this.scores[pos] = this.score(i);
    return ok;
  }

  /** keep moves the entry at list position `from` to `to` (compaction). */
  private keep(to: number, from: number, i: number): void {
    this.list[to] = i;
    this.seen[to] = this.seen[from] ?? 0;
    this.fits[to] = this.fits[from] ?? 0;
    this.scores[to] = this.scores[from] ?? Number.NaN;
  }

  /** size is the number of candidates still in the list. */
  get size(): number {
    return this.length;
  }

  /** feasible says whether the slot passes every dynamic check (maxPerAgent, ports, resources) for one more task. */
  feasible(i: number): boolean {
    const checks = this.checks;
    for (let c = 0; c < checks.length; c++) if (!(checks[c] as PackedCheck).ok(i)) return false;
    return true;
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
    const start = this.spread && this.sampled ? this.cursor % Math.max(1, n) : 0;
    // Rotate for spread by scanning [start, n) then [0, start); compaction only for the bin-pack form.
    if (start !== 0) {
      for (let step = 0; step < n && found < this.limit; step++) {
        const pos = (start + step) % n;
        if (!this.evaluate(pos, list[pos] ?? 0)) continue;
        found += 1;
        bestScore = keepBest(best, bestScore, list[pos] ?? 0, this.scores[pos] ?? 0, tieEpsilon);
      }
      this.cursor = (start + 1) % Math.max(1, n);
    } else {
      for (; read < n && found < this.limit; read++) {
        const i = list[read] ?? 0;
        if (!this.evaluate(read, i)) {
          if (!this.sampled) this.keep(write++, read, i);
          continue;
        }
        const score = this.scores[read] ?? 0;
        this.keep(write++, read, i);
        found += 1;
        bestScore = keepBest(best, bestScore, i, score, tieEpsilon);
      }
      if (write < read) {
        list.copyWithin(write, read, n);
        this.seen.copyWithin(write, read, n);
        this.fits.copyWithin(write, read, n);
        this.scores.copyWithin(write, read, n);
        this.length = n - (read - write);
      }
      if (this.sampled && this.spread) this.cursor += 1;
    }
    if (best.length === 0) return -1;
    if (best.length === 1) return best[0] ?? -1;
    return best[rng.pick(best.length)] ?? -1;
  }
}
