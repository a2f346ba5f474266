/**
 * The repair's shared bookkeeping (issue 15): the packed view of one repair that admit, repack and
 * eject work on. Kinds (the tasks of one group in one cluster, interchangeable), movers (this pass's
 * placements that may move) and which agent holds which mover; the prefilter checks on the ledger's
 * packed arrays (allowed, fits) and confirm(), the reference chain that is the authority; reserve and
 * release on the ledger, so a step can roll back exactly what it did; the evaluation count and budget.
 */
import type { StaticClasses } from './candidates.js';
import type { CheckContext, Checker } from './feasibility.js';
import { firstRejection } from './feasibility.js';
import type { ProjectShares } from './fairness.js';
import type { ClusterLedger } from './ledger.js';
import { groupKey } from './ledger.js';
import type { PlacementRequest } from './reconcile.js';
import type { Rejection } from './rejections.js';
import { RESOURCE_EPSILON } from './resources.js';
import type { AgentSnapshot, DesiredGroup, GroupDecision, PlacementReason, ProjectPolicy, TaskResources, Unplaced } from './types.js';

/** RepairPlacement is one placement of the pass as the repair sees it; a move rewrites `agent`. */
export interface RepairPlacement {
  request: PlacementRequest;
  agent: AgentSnapshot;
  reason: PlacementReason;
}

/** RepairHost is the scheduling pass the repair works in: its ledger, shares, placements and unplaced tasks. */
export interface RepairHost {
  readonly ledger: ClusterLedger;
  readonly shares: ProjectShares;
  readonly projects: Readonly<Record<string, ProjectPolicy>>;
  readonly placed: RepairPlacement[];
  readonly unplaced: Unplaced[];
  /** pipeline gives the reference chain (project pinning included), the static classes and level 1's decisions. */
  readonly pipeline: { readonly chain: readonly Checker[]; readonly classes: StaticClasses; readonly decisions: readonly GroupDecision[] };
  /** vec packs task resources over the ledger's dims. */
  vec(r: TaskResources): Float64Array;
  /** commit places a request on an agent (reserve, charge the project, record, stop what it replaces); the repair passes observe = false. */
  commit(request: PlacementRequest, agent: AgentSnapshot, observe: boolean): void;
}

/** Kind is the tasks of one group in one cluster: interchangeable for the repair. */
export interface Kind {
  group: DesiredGroup;
  key: string;
  cluster: number;
  demand: Float64Array;
  asked: Int32Array;
  rejections: (Rejection | undefined)[];
  project: string;
  /** hosts caches the agents the kind may go to (static checks and cluster), in slot order. */
  hosts?: Int32Array;
}

/** Mover is a placement of the pass that the repair may move. */
export interface Mover {
  p: RepairPlacement;
  kind: number;
  slot: number;
}

/** Pending is an unplaced request the repair tries to place, with its kind. */
export interface Pending {
  request: PlacementRequest;
  kind: number;
}

/** fitsIn says whether a kind's demand fits in `free[row + d]` for every dim it asks for. */
export function fitsIn(k: Kind, free: Float64Array, row: number): boolean {
  for (let j = 0; j < k.asked.length; j++) {
    const d = k.asked[j] ?? 0;
    if ((k.demand[d] ?? 0) > (free[row + d] ?? 0) + RESOURCE_EPSILON) return false;
  }
  return true;
}

/** RepairState holds the packed view of the kinds, movers and agents of one repair. */
export class RepairState {
  evaluations = 0;
  readonly ledger: ClusterLedger;
  readonly D: number;
  readonly kinds: Kind[] = [];
  readonly movers: Mover[] = [];
  readonly onAgent = new Map<number, number[]>();
  readonly clusterOf: Int32Array;
  readonly clusterIds = new Map<string, number>();
  /** origin is each mover's agent as the greedy pass left it. */
  readonly origin: number[] = [];
  /** version counts successful changes; caches of failures are valid for one version. */
  version = 0;
  readonly noHost = new Map<number, number>();
  private readonly kindOf = new Map<DesiredGroup, Map<number, number>>();
  private readonly ctx: CheckContext;

  constructor(
    readonly host: RepairHost,
    private readonly budget: number,
  ) {
    this.ledger = host.ledger;
    this.ctx = { ledger: host.ledger, projects: host.projects };
    this.D = this.ledger.dims.length;
    this.clusterOf = new Int32Array(this.ledger.slots.length);
    this.ledger.slots.forEach((s, i) => (this.clusterOf[i] = this.clusterId(s.agent.cluster)));
  }

  /** clusterId numbers a cluster name. */
  clusterId(name: string): number {
    let id = this.clusterIds.get(name);
    if (id === undefined) this.clusterIds.set(name, (id = this.clusterIds.size));
    return id;
  }

  /** kindFor is the index of the kind of a group in a cluster, made on first use. */
  kindFor(group: DesiredGroup, cluster: number): number {
    let m = this.kindOf.get(group);
    if (!m) this.kindOf.set(group, (m = new Map()));
    let k = m.get(cluster);
    if (k !== undefined) return k;
    const demand = this.host.vec(group.resources);
    const asked: number[] = [];
    for (let d = 0; d < this.D; d++) if ((demand[d] ?? 0) > 0) asked.push(d);
    k = this.kinds.length;
    this.kinds.push({ group, key: groupKey(group), cluster, demand, asked: Int32Array.from(asked), rejections: this.host.pipeline.classes.rejections(group), project: group.project });
    m.set(cluster, k);
    return k;
  }

  /** moved counts movers that ended on another agent than where the greedy pass put them. */
  moved(): number {
    let n = 0;
    this.movers.forEach((m, i) => {
      if (i < this.origin.length && m.slot !== this.origin[i]) n += 1;
    });
    return n;
  }

  /** addMover records a placement as a mover on agent `slot`. */
  addMover(p: RepairPlacement, kind: number, slot: number): void {
    const i = this.movers.length;
    this.movers.push({ p, kind, slot });
    this.attach(i, slot);
  }

  /** relocate moves mover i to agent `to` in the bookkeeping and in its placement (the ledger is the caller's). */
  relocate(i: number, to: number): void {
    const m = this.movers[i];
    if (!m) return;
    const from = this.onAgent.get(m.slot);
    if (from) {
      const at = from.indexOf(i);
      if (at >= 0) from.splice(at, 1);
    }
    m.slot = to;
    this.attach(i, to);
    const slot = this.ledger.slots[to];
    if (slot) m.p.agent = slot.agent;
  }

  private attach(i: number, slot: number): void {
    let list = this.onAgent.get(slot);
    if (!list) this.onAgent.set(slot, (list = []));
    list.push(i);
  }

  /** moverKind is the kind of mover i. */
  moverKind(i: number): Kind | undefined {
    const m = this.movers[i];
    return m ? this.kinds[m.kind] : undefined;
  }

  /** commitMover commits a request on agent a through the host and makes the new placement a mover. */
  commitMover(request: PlacementRequest, kind: number, a: number, agent: AgentSnapshot): void {
    this.host.commit(request, agent, false);
    this.addMover(this.host.placed[this.host.placed.length - 1] as RepairPlacement, kind, a);
  }

  /** releaseMovers releases every mover's reservation on its agent. */
  releaseMovers(): void {
    for (const m of this.movers) {
      const k = this.kinds[m.kind];
      if (k) this.release(k, m.slot);
    }
  }

  /** reserveMovers reserves every mover on its agent again. */
  reserveMovers(): void {
    for (const m of this.movers) {
      const k = this.kinds[m.kind];
      if (k) this.reserve(k, m.slot);
    }
  }

  // ---- checks on packed arrays (prefilters); confirm() is the authority ----

  /** allowed says whether the static checks and the cluster let a kind on an agent. */
  allowed(k: Kind, slot: number): boolean {
    return this.clusterOf[slot] === k.cluster && k.rejections[this.host.pipeline.classes.classOf[slot] ?? 0] === undefined;
  }

  /** fits says whether a kind's demand fits the agent's free capacity now. */
  fits(k: Kind, slot: number): boolean {
    return fitsIn(k, this.ledger.free, slot * this.D);
  }

  /** confirm runs the reference chain (project pinning included) and the cluster check: the placement is allowed now. */
  confirm(k: Kind, slot: number): boolean {
    const s = this.ledger.slots[slot];
    if (!s || this.clusterOf[slot] !== k.cluster) return false;
    return !firstRejection(this.host.pipeline.chain, this.ctx, s, k.group);
  }

  /** reserve takes one task of a kind out of an agent's free capacity. */
  reserve(k: Kind, slot: number): void {
    const s = this.ledger.slots[slot];
    if (s) this.ledger.reserve(s.agent.name, k.key, k.group.resources);
  }

  /** release gives one task of a kind back to an agent's free capacity. */
  release(k: Kind, slot: number): void {
    const s = this.ledger.slots[slot];
    if (s) this.ledger.release(s.agent.name, k.key, k.group.resources);
  }

  /** size is a kind's demand relative to an agent's allocatable, summed over the dims it asks for. */
  size(k: Kind | undefined, slot: number): number {
    let z = 0;
    for (const d of k?.asked ?? []) z += (k?.demand[d] ?? 0) / (this.ledger.allocatable[slot * this.D + d] || 1);
    return z;
  }

  /** dot is the alignment of a kind's demand with an agent's free capacity, both over the agent's allocatable. */
  dot(k: Kind, slot: number): number {
    const row = slot * this.D;
    let s = 0;
    for (let j = 0; j < k.asked.length; j++) {
      const d = k.asked[j] ?? 0;
      const cap = this.ledger.allocatable[row + d] ?? 0;
      if (cap > 0) s += ((k.demand[d] ?? 0) / cap) * ((this.ledger.free[row + d] ?? 0) / cap);
    }
    return s;
  }

  /** leftover is what an agent would have free after a kind's task, summed over the kind's dims relative to the agent's allocatable. */
  leftover(k: Kind, slot: number): number {
    const row = slot * this.D;
    let s = 0;
    for (let j = 0; j < k.asked.length; j++) {
      const d = k.asked[j] ?? 0;
      const cap = this.ledger.allocatable[row + d] ?? 0;
      if (cap > 0) s += ((this.ledger.free[row + d] ?? 0) - (k.demand[d] ?? 0)) / cap;
    }
    return s;
  }

  /** hostsOf is the agents a kind may go to (static checks and cluster), in slot order, cached. */
  hostsOf(kind: number): Int32Array {
    const k = this.kinds[kind];
    if (!k) return new Int32Array(0);
    if (!k.hosts) {
      const out: number[] = [];
      for (let i = 0; i < this.ledger.slots.length; i++) if (this.allowed(k, i)) out.push(i);
      k.hosts = Int32Array.from(out);
    }
    return k.hosts;
  }

  /** spent says whether the evaluation budget is used up. */
  spent(): boolean {
    return this.evaluations >= this.budget;
  }
}
