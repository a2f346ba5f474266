/**
 * Repair after a batch (issue 15): when the greedy pass leaves tasks unplaced, spend a bounded number
 * of evaluations moving this pass's own placements so that more of them fit.
 *
 *   nothing unplaced   nothing to do: the hook in schedule.ts costs one length check
 *   admit              the unplaced tasks the repack may place, in DRF order (the project with the
 *                      smallest weighted dominant share next), each if its cluster has that much free in
 *                      aggregate and its quota allows it: all of them when capacity is not short
 *   repack             release this pass's movable placements and pack them with the admitted tasks
 *                      agent by agent: on each agent, the set of tasks that leaves the least free
 *                      (Minimum Bin Slack: a depth-first search over shapes, largest first, bounded per
 *                      agent and kept inside the cone of ratios the remaining shapes span, so that an
 *                      exact fill stays reachable), then the task best aligned with what is still free
 *                      (DotProduct, Panigrahy et al., "Heuristics for Vector Bin Packing", 2011) until
 *                      none fits. Adopted only if every task placed before is placed again and some
 *                      admitted task is placed too, else rolled back exactly.
 *   eject              for each task still unplaced (project with the smallest weighted dominant share
 *                      first): an agent where moving one or two of this pass's tasks to other agents
 *                      makes room, the moved tasks going where they fit best.
 *   budget             every candidate looked at counts against the budget; when it is spent the repair
 *                      stops where it is. A count, not a clock, so a seed still gives one plan.
 *
 * Only placements of this pass that the scheduler chose freely move: never a task that runs, an
 * everyAgent task, a task placed on its preferred agent (update, restart) or a resource-plan VM. A moved
 * task stays in the cluster level 1 chose for its group. Every placement is confirmed by the pipeline's
 * reference chain (feasibility.ts, project pinning included) before it is made, and a task added to the
 * plan must fit its project's quota.
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

/**
 * REPAIR_BUDGET_PER_ITEM is the repair's evaluation budget per task of the batch (placed or not) and per
 * agent: the perfectly packable instances of `npm run bench` use 6–11 (bench/packable.ts).
 */
export const REPAIR_BUDGET_PER_ITEM = 64;

/** MBS_NODES_PER_AGENT bounds the repack's search for the set of tasks that fills one agent best. */
export const MBS_NODES_PER_AGENT = 400;

/** EJECT_AGENTS_PER_TASK is how many agents, closest to fitting first, the eject step tries per unplaced task. */
export const EJECT_AGENTS_PER_TASK = 48;

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

/** RepairOptions tunes one repair. */
export interface RepairOptions {
  /** budget overrides the evaluation budget (default REPAIR_BUDGET_PER_ITEM × (tasks of the batch + agents)). */
  budget?: number;
}

/** RepairStats says what a repair did. */
export interface RepairStats {
  /** placed counts tasks that were unplaced and now are. */
  placed: number;
  /** moved counts placements of the pass that ended on another agent. */
  moved: number;
  evaluations: number;
  repacked: boolean;
}

/** Kind is the tasks of one group in one cluster: interchangeable for the repair. */
interface Kind {
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
interface Mover {
  p: RepairPlacement;
  kind: number;
  slot: number;
}

/** isRepairTarget says whether an unplaced request may be placed by the repair (new tasks and reschedules that hold nothing). */
function isRepairTarget(r: PlacementRequest): boolean {
  return r.task !== undefined && r.reportIfUnplaced && r.pinnedAgent === undefined && r.preferredAgent === undefined && !(r.replaces && r.holdsResources) && !isResourcePlanGroup(r.group);
}

/** isMovable says whether a placement of the pass was chosen freely by the scheduler (so it may move). */
function isMovable(p: RepairPlacement): boolean {
  const r = p.request;
  return r.pinnedAgent === undefined && r.preferredAgent === undefined && !isResourcePlanGroup(r.group);
}

function isResourcePlanGroup(g: DesiredGroup): boolean {
  return g.total !== undefined && (g.shapes?.length ?? 0) > 0 && !g.everyAgent;
}

/** repairPacking places what it can of the pass's unplaced tasks by moving the pass's own placements. */
export function repairPacking(host: RepairHost, requests: readonly PlacementRequest[], opts: RepairOptions = {}): RepairStats {
  const stats: RepairStats = { placed: 0, moved: 0, evaluations: 0, repacked: false };
  if (host.unplaced.length === 0) return stats;
  const unplacedIds = new Set(host.unplaced.map((u) => u.task));
  const targets = requests.filter((r) => r.task !== undefined && unplacedIds.has(r.task) && isRepairTarget(r));
  if (targets.length === 0) return stats;
  const budget = opts.budget ?? REPAIR_BUDGET_PER_ITEM * (host.placed.length + host.unplaced.length + host.ledger.slots.length);
  const repair = new Repair(host, budget);
  const placedIds = repair.run(targets);
  if (placedIds.size > 0) {
    const keep = host.unplaced.filter((u) => !placedIds.has(u.task));
    host.unplaced.length = 0;
    host.unplaced.push(...keep);
  }
  stats.placed = placedIds.size;
  stats.moved = repair.moved();
  stats.evaluations = repair.evaluations;
  stats.repacked = repair.repacked;
  return stats;
}

/** Repair holds the packed view of the kinds, movers and agents of one repair. */
class Repair {
  evaluations = 0;
  repacked = false;
  private readonly ledger: ClusterLedger;
  private readonly D: number;
  private readonly kinds: Kind[] = [];
  private readonly kindOf = new Map<DesiredGroup, Map<number, number>>();
  private readonly movers: Mover[] = [];
  private readonly onAgent = new Map<number, number[]>();
  private readonly clusterOf: Int32Array;
  private readonly clusterIds = new Map<string, number>();
  private readonly origin: number[] = [];
  /** version counts successful changes; caches of failures are valid for one version. */
  private version = 0;
  private noHost = new Map<number, number>();

  private readonly ctx: CheckContext;

  constructor(
    private readonly host: RepairHost,
    private readonly budget: number,
  ) {
    this.ledger = host.ledger;
    this.ctx = { ledger: host.ledger, projects: host.projects };
    this.D = this.ledger.dims.length;
    this.clusterOf = new Int32Array(this.ledger.slots.length);
    this.ledger.slots.forEach((s, i) => (this.clusterOf[i] = this.clusterId(s.agent.cluster)));
  }

  private clusterId(name: string): number {
    let id = this.clusterIds.get(name);
    if (id === undefined) this.clusterIds.set(name, (id = this.clusterIds.size));
    return id;
  }

  private kindFor(group: DesiredGroup, cluster: number): number {
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

  /** run places what it can of `targets`; returns the ids placed. */
  run(targets: PlacementRequest[]): Set<string> {
    const placed = new Set<string>();
    // The cluster level 1 chose for each target's group.
    const chosen = new Map<string, string>();
    for (const d of this.host.pipeline.decisions) chosen.set(`${d.plan}/${d.group}`, d.cluster);
    const pending: { request: PlacementRequest; kind: number }[] = [];
    const clusters = new Set<number>();
    for (const r of targets) {
      const c = chosen.get(groupKey(r.group));
      if (c === undefined || c === '') continue;
      const kind = this.kindFor(r.group, this.clusterId(c));
      pending.push({ request: r, kind });
      clusters.add(this.kinds[kind]?.cluster ?? -1);
    }
    // Moving tasks frees no capacity: a target that does not fit its cluster's free capacity in
    // aggregate (or its quota) never fits, so when DRF admits none there is nothing to do.
    const admitted = pending.length > 0 ? this.admit(pending) : [];
    if (admitted.length === 0) return placed;
    for (const p of this.host.placed) {
      if (!isMovable(p)) continue;
      const slot = this.ledger.indexOf(p.agent.name);
      const cluster = this.clusterOf[slot] ?? -1;
      if (slot < 0 || !clusters.has(cluster)) continue;
      this.addMover(p, this.kindFor(p.request.group, cluster), slot);
    }
    for (const m of this.movers) this.origin.push(m.slot);

    let rest = pending;
    const done = this.repack(admitted);
    if (done) {
      this.repacked = true;
      for (const r of done) if (r.task !== undefined) placed.add(r.task);
      rest = pending.filter((p) => !done.has(p.request));
    }
    this.ejectAll(rest, placed);
    return placed;
  }

  /**
   * admit picks the targets the repack may place, as DRF would: the project with the smallest weighted
   * dominant share takes its next target if the target's cluster still has that much free in aggregate
   * and its quota allows it (a target that does not fit is skipped, the project stays in line). When
   * capacity is not short every target is admitted.
   */
  private admit(pending: { request: PlacementRequest; kind: number }[]): { request: PlacementRequest; kind: number }[] {
    const D = this.D;
    const free = new Float64Array(this.clusterIds.size * D);
    this.ledger.slots.forEach((s, i) => {
      if (s.agent.state !== 'ready') return;
      const c = this.clusterOf[i] ?? 0;
      for (let d = 0; d < D; d++) free[c * D + d] = (free[c * D + d] ?? 0) + Math.max(0, this.ledger.free[i * D + d] ?? 0);
    });
    const queues = new Map<string, { request: PlacementRequest; kind: number }[]>();
    for (const p of pending) {
      const q = queues.get(p.request.group.project);
      if (q) q.push(p);
      else queues.set(p.request.group.project, [p]);
    }
    const names = [...queues.keys()].sort();
    const out: { request: PlacementRequest; kind: number }[] = [];
    for (;;) {
      let pick: string | undefined;
      let least = Number.POSITIVE_INFINITY;
      for (const name of names) {
        if ((queues.get(name)?.length ?? 0) === 0) continue;
        const share = this.host.shares.share(name);
        if (share < least - 1e-12) {
          least = share;
          pick = name;
        }
      }
      if (pick === undefined) break;
      const next = queues.get(pick)?.shift();
      const k = next ? this.kinds[next.kind] : undefined;
      if (!next || !k || this.host.shares.quotaExceeded(k.project, k.demand)) continue;
      const row = k.cluster * D;
      let fits = true;
      for (const d of k.asked) if ((k.demand[d] ?? 0) > (free[row + d] ?? 0) + RESOURCE_EPSILON) fits = false;
      if (!fits) continue;
      for (const d of k.asked) free[row + d] = (free[row + d] ?? 0) - (k.demand[d] ?? 0);
      this.host.shares.add(k.project, k.demand, 1);
      out.push(next);
    }
    // The shares were charged only to keep the order: give them back.
    for (const p of out) {
      const k = this.kinds[p.kind];
      if (k) this.host.shares.add(k.project, k.demand, -1);
    }
    return out;
  }

  private addMover(p: RepairPlacement, kind: number, slot: number): void {
    const i = this.movers.length;
    this.movers.push({ p, kind, slot });
    let list = this.onAgent.get(slot);
    if (!list) this.onAgent.set(slot, (list = []));
    list.push(i);
  }

  private relocate(i: number, to: number): void {
    const m = this.movers[i];
    if (!m) return;
    const from = this.onAgent.get(m.slot);
    if (from) {
      const at = from.indexOf(i);
      if (at >= 0) from.splice(at, 1);
    }
    m.slot = to;
    let list = this.onAgent.get(to);
    if (!list) this.onAgent.set(to, (list = []));
    list.push(i);
    const slot = this.ledger.slots[to];
    if (slot) m.p.agent = slot.agent;
  }

  // ---- checks on packed arrays (prefilters); confirm() is the authority ----

  private allowed(k: Kind, slot: number): boolean {
    return this.clusterOf[slot] === k.cluster && k.rejections[this.host.pipeline.classes.classOf[slot] ?? 0] === undefined;
  }

  private fits(k: Kind, slot: number): boolean {
    const row = slot * this.D;
    const free = this.ledger.free;
    for (let j = 0; j < k.asked.length; j++) {
      const d = k.asked[j] ?? 0;
      if ((k.demand[d] ?? 0) > (free[row + d] ?? 0) + RESOURCE_EPSILON) return false;
    }
    return true;
  }

  /** confirm runs the reference chain (project pinning included) and the cluster check: the placement is allowed now. */
  private confirm(k: Kind, slot: number): boolean {
    const s = this.ledger.slots[slot];
    if (!s || this.clusterOf[slot] !== k.cluster) return false;
    return !firstRejection(this.host.pipeline.chain, this.ctx, s, k.group);
  }

  private reserve(k: Kind, slot: number): void {
    const s = this.ledger.slots[slot];
    if (s) this.ledger.reserve(s.agent.name, k.key, k.group.resources);
  }

  private release(k: Kind, slot: number): void {
    const s = this.ledger.slots[slot];
    if (s) this.ledger.release(s.agent.name, k.key, k.group.resources);
  }

  /** dot is the alignment of a kind's demand with an agent's free capacity, both over the agent's allocatable. */
  private dot(k: Kind, slot: number): number {
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
  private leftover(k: Kind, slot: number): number {
    const row = slot * this.D;
    let s = 0;
    for (let j = 0; j < k.asked.length; j++) {
      const d = k.asked[j] ?? 0;
      const cap = this.ledger.allocatable[row + d] ?? 0;
      if (cap > 0) s += ((this.ledger.free[row + d] ?? 0) - (k.demand[d] ?? 0)) / cap;
    }
    return s;
  }

  private hostsOf(kind: number): Int32Array {
    const k = this.kinds[kind];
    if (!k) return new Int32Array(0);
    if (!k.hosts) {
      const out: number[] = [];
      for (let i = 0; i < this.ledger.slots.length; i++) if (this.allowed(k, i)) out.push(i);
      k.hosts = Int32Array.from(out);
    }
    return k.hosts;
  }

  private spent(): boolean {
    return this.evaluations >= this.budget;
  }

  // ---- repack ----

  /**
   * repack releases every mover and packs movers and targets agent by agent: on each agent, the set of
   * tasks that leaves the least free (a bounded depth-first search over shapes, largest first: Minimum
   * Bin Slack), then the task whose demand best matches what is still free (DotProduct) until none fits.
   * Returns the targets it placed, or undefined after rolling back when it placed none, a mover found
   * no place or the budget ran out.
   */
  private repack(pending: { request: PlacementRequest; kind: number }[]): Set<PlacementRequest> | undefined {
    const K = this.kinds.length;
    const D = this.D;
    const mustLeft = new Int32Array(K);
    const optLeft = new Int32Array(K);
    const optQueue: PlacementRequest[][] = Array.from({ length: K }, () => []);
    for (const m of this.movers) mustLeft[m.kind] = (mustLeft[m.kind] ?? 0) + 1;
    for (const p of pending) {
      optLeft[p.kind] = (optLeft[p.kind] ?? 0) + 1;
      optQueue[p.kind]?.push(p.request);
    }
    // Shapes: kinds with one demand, cluster and static verdict, and no per-agent rule or quota, pack as one.
    const shapes: { kinds: number[]; rep: Kind }[] = [];
    const shapeByKey = new Map<string, number>();
    const used = new Uint8Array(D);
    for (let k = 0; k < K; k++) {
      const kind = this.kinds[k];
      if (!kind || (mustLeft[k] ?? 0) + (optLeft[k] ?? 0) === 0) continue;
      for (const d of kind.asked) used[d] = 1;
      const simple = kind.group.maxPerAgent === undefined && kind.group.resources.ports.length === 0 && !this.host.projects[kind.project]?.quota;
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
    for (const m of this.movers) {
      const k = this.kinds[m.kind];
      if (k) this.release(k, m.slot);
    }
    // Agents of the involved clusters, most free first (relative to their size).
    const clusters = new Set(this.kinds.map((k) => k.cluster));
    const agents: number[] = [];
    const room: number[] = [];
    for (let i = 0; i < this.ledger.slots.length; i++) {
      if (!clusters.has(this.clusterOf[i] ?? -1) || this.ledger.slots[i]?.agent.state !== 'ready') continue;
      let r = 0;
      for (let d = 0; d < D; d++) {
        const cap = this.ledger.allocatable[i * D + d] ?? 0;
        if (cap > 0 && used[d]) r += (this.ledger.free[i * D + d] ?? 0) / cap;
      }
      agents.push(i);
      room[i] = r;
    }
    agents.sort((a, b) => (room[b] ?? 0) - (room[a] ?? 0) || a - b);
    const assigned: { kind: number; slot: number; opt: boolean }[] = [];
    /** take places one task of a shape on agent a (a mover first, else a target within quota); false when none may go there. */
    const take = (sh: number, a: number): boolean => {
      const shape = shapes[sh];
      if (!shape) return false;
      for (const k of shape.kinds) {
        const kind = this.kinds[k];
        const must = (mustLeft[k] ?? 0) > 0;
        if (!kind || (!must && (optLeft[k] ?? 0) === 0)) continue;
        if (!this.confirm(kind, a)) continue;
        if (!must) {
          if (this.host.shares.quotaExceeded(kind.project, kind.demand)) {
            shapeLeft[sh] = (shapeLeft[sh] ?? 0) - (optLeft[k] ?? 0);
            optLeft[k] = 0;
            continue;
          }
          this.host.shares.add(kind.project, kind.demand, 1);
          optLeft[k] = (optLeft[k] ?? 0) - 1;
        } else mustLeft[k] = (mustLeft[k] ?? 0) - 1;
        shapeLeft[sh] = (shapeLeft[sh] ?? 0) - 1;
        this.reserve(kind, a);
        assigned.push({ kind: k, slot: a, opt: !must });
        return true;
      }
      return false;
    };
    const work = new Float64Array(D);
    const count = new Int32Array(S);
    const cand: number[] = [];
    const size: number[] = [];
    let aborted = false;
    for (const a of agents) {
      const row = a * D;
      const alloc = this.ledger.allocatable;
      // Minimum Bin Slack: the set of shapes leaving the least free, largest shapes tried first.
      cand.length = 0;
      for (let sh = 0; sh < S; sh++) {
        const shape = shapes[sh];
        this.evaluations += 1;
        if (!shape || (shapeLeft[sh] ?? 0) <= 0 || !this.allowed(shape.rep, a) || !this.fits(shape.rep, a)) continue;
        let z = 0;
        for (const d of shape.rep.asked) z += (shape.rep.demand[d] ?? 0) / (alloc[row + d] || 1);
        size[sh] = z;
        cand.push(sh);
      }
      cand.sort((x, y) => (size[y] ?? 0) - (size[x] ?? 0) || x - y);
      for (let d = 0; d < D; d++) work[d] = this.ledger.free[row + d] ?? 0;
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
          let ok = true;
          for (const d of rep.asked) if ((rep.demand[d] ?? 0) > (work[d] ?? 0) + RESOURCE_EPSILON) ok = false;
          if (!ok) continue;
          let z = 0;
          for (const d of rep.asked) {
            work[d] = (work[d] ?? 0) - (rep.demand[d] ?? 0);
            z += (rep.demand[d] ?? 0) / (alloc[row + d] || 1);
          }
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
      this.evaluations += nodes;
      for (const sh of best) take(sh, a);
      // Top up: the best-aligned shape that still fits, until none does.
      let blocked: Set<number> | undefined;
      for (;;) {
        let bestShape = -1;
        let bestScore = Number.NEGATIVE_INFINITY;
        for (const sh of cand) {
          const rep = shapes[sh]?.rep;
          if (!rep || (shapeLeft[sh] ?? 0) <= 0 || blocked?.has(sh)) continue;
          this.evaluations += 1;
          if (!this.fits(rep, a)) continue;
          const score = this.dot(rep, a);
          if (score > bestScore + 1e-12) {
            bestScore = score;
            bestShape = sh;
          }
        }
        if (bestShape < 0) break;
        if (!take(bestShape, a)) (blocked ??= new Set()).add(bestShape);
      }
      if (this.spent()) {
        aborted = true;
        break;
      }
    }
    // Movers left over (when capacity is short the pool holds more than fits): make room by taking
    // admitted tasks back off an agent, the one where the least has to go.
    for (let k = 0; k < K && !aborted; k++) {
      const kind = this.kinds[k];
      while (kind && (mustLeft[k] ?? 0) > 0 && !this.spent()) {
        const a = this.roomFor(kind, assigned);
        if (a < 0) break;
        this.evictFor(kind, a, assigned, (x) => {
          const xk = this.kinds[x.kind];
          if (!xk) return;
          this.release(xk, x.slot);
          this.host.shares.add(xk.project, xk.demand, -1);
          optLeft[x.kind] = (optLeft[x.kind] ?? 0) + 1;
        });
        if (!this.fits(kind, a) || !this.confirm(kind, a)) break;
        mustLeft[k] = (mustLeft[k] ?? 0) - 1;
        this.reserve(kind, a);
        assigned.push({ kind: k, slot: a, opt: false });
      }
    }
    // Moving tasks only pays when it places more: otherwise, and when a mover found no place, roll back.
    if (aborted || mustLeft.some((n) => n > 0) || !assigned.some((x) => x.opt && x.kind >= 0)) {
      for (const x of assigned) {
        const k = this.kinds[x.kind];
        if (!k) continue; // taken back already
        this.release(k, x.slot);
        if (x.opt) this.host.shares.add(k.project, k.demand, -1);
      }
      for (const m of this.movers) {
        const k = this.kinds[m.kind];
        if (k) this.reserve(k, m.slot);
      }
      return undefined;
    }
    // Adopt: movers keep their agent where the new packing has a task of their kind there.
    const slotsOf: Map<number, number>[] = Array.from({ length: K }, () => new Map());
    const opts: { kind: number; slot: number }[] = [];
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
    this.movers.forEach((m, i) => {
      const free = slotsOf[m.kind];
      const n = free?.get(m.slot) ?? 0;
      if (n > 0) free?.set(m.slot, n - 1);
      else homeless.push(i);
    });
    for (const i of homeless) {
      const m = this.movers[i];
      const free = m ? slotsOf[m.kind] : undefined;
      if (!m || !free) continue;
      for (const [slot, n] of free) {
        if (n <= 0) continue;
        free.set(slot, n - 1);
        this.relocate(i, slot);
        break;
      }
    }
    const done = new Set<PlacementRequest>();
    for (const x of opts) {
      const k = this.kinds[x.kind];
      const request = optQueue[x.kind]?.shift();
      const slot = this.ledger.slots[x.slot];
      if (!k || !request || !slot) continue;
      this.release(k, x.slot);
      this.host.shares.add(k.project, k.demand, -1);
      this.host.commit(request, slot.agent, false);
      this.addMover(this.host.placed[this.host.placed.length - 1] as RepairPlacement, x.kind, x.slot);
      done.add(request);
    }
    this.version += 1;
    return done;
  }

  /** roomFor is the agent where a kind fits after taking back the fewest admitted tasks (by size), or -1. */
  private roomFor(kind: Kind, assigned: { kind: number; slot: number; opt: boolean }[]): number {
    const optOn = new Map<number, number[]>();
    assigned.forEach((x, i) => {
      if (!x.opt || x.kind < 0) return;
      const list = optOn.get(x.slot);
      if (list) list.push(i);
      else optOn.set(x.slot, [i]);
    });
    let best = -1;
    let bestCost = Number.POSITIVE_INFINITY;
    const row = new Float64Array(this.D);
    for (const a of this.hostsOf(this.kinds.indexOf(kind))) {
      this.evaluations += 1;
      for (let d = 0; d < this.D; d++) row[d] = this.ledger.free[a * this.D + d] ?? 0;
      let cost = 0;
      for (const i of optOn.get(a) ?? []) {
        const x = this.kinds[assigned[i]?.kind ?? -1];
        if (!x) continue;
        for (const d of x.asked) row[d] = (row[d] ?? 0) + (x.demand[d] ?? 0);
      }
      let ok = true;
      for (const d of kind.asked) if ((kind.demand[d] ?? 0) > (row[d] ?? 0) + RESOURCE_EPSILON) ok = false;
      if (!ok) continue;
      // Cost: how short the agent is now, relative to its size (0 when the kind fits already).
      for (const d of kind.asked) {
        const cap = this.ledger.allocatable[a * this.D + d] ?? 0;
        const short = (kind.demand[d] ?? 0) - (this.ledger.free[a * this.D + d] ?? 0);
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
  private evictFor(kind: Kind, a: number, assigned: { kind: number; slot: number; opt: boolean }[], release: (x: { kind: number; slot: number }) => void): void {
    const on = assigned.filter((x) => x.opt && x.kind >= 0 && x.slot === a);
    const size = (x: { kind: number }) => {
      const k = this.kinds[x.kind];
      let z = 0;
      for (const d of k?.asked ?? []) z += (k?.demand[d] ?? 0) / (this.ledger.allocatable[a * this.D + d] || 1);
      return z;
    };
    on.sort((x, y) => size(y) - size(x));
    for (const x of on) {
      if (this.fits(kind, a)) return;
      // Only take back a task that frees something the kind is short of.
      let helps = false;
      const xk = this.kinds[x.kind];
      for (const d of kind.asked) if ((kind.demand[d] ?? 0) > (this.ledger.free[a * this.D + d] ?? 0) + RESOURCE_EPSILON && (xk?.demand[d] ?? 0) > 0) helps = true;
      if (!helps) continue;
      release(x);
      x.kind = -1;
    }
  }

  // ---- eject ----

  /**
   * ejectAll tries each remaining target, the project with the smallest weighted dominant share first,
   * in passes until a pass places nothing (a kind that failed is not retried until something changed).
   */
  private ejectAll(rest: { request: PlacementRequest; kind: number }[], placed: Set<string>): void {
    const failedAt = new Map<number, number>();
    let remaining = rest;
    while (remaining.length > 0 && !this.spent()) {
      const queues = new Map<string, { request: PlacementRequest; kind: number }[]>();
      for (const p of remaining) {
        const q = queues.get(p.request.group.project);
        if (q) q.push(p);
        else queues.set(p.request.group.project, [p]);
      }
      const names = [...queues.keys()].sort();
      const again: { request: PlacementRequest; kind: number }[] = [];
      const before = placed.size;
      while (!this.spent()) {
        let pick: string | undefined;
        let least = Number.POSITIVE_INFINITY;
        for (const name of names) {
          if ((queues.get(name)?.length ?? 0) === 0) continue;
          const share = this.host.shares.share(name);
          if (share < least - 1e-12) {
            least = share;
            pick = name;
          }
        }
        if (pick === undefined) break;
        const next = queues.get(pick)?.shift();
        if (!next) continue;
        if (failedAt.get(next.kind) !== this.version && this.eject(next.request, next.kind)) placed.add(next.request.task ?? '');
        else {
          failedAt.set(next.kind, this.version);
          again.push(next);
        }
      }
      if (placed.size === before) break;
      remaining = again;
    }
  }

  /** eject places one target: where it fits, else on an agent emptied enough by moving one or two movers away. */
  private eject(request: PlacementRequest, kindIndex: number): boolean {
    const k = this.kinds[kindIndex];
    if (!k || this.host.shares.quotaExceeded(k.project, k.demand)) return false;
    const hosts = this.hostsOf(kindIndex);
    // Agents closest to fitting first.
    const near: { slot: number; gap: number }[] = [];
    for (const a of hosts) {
      this.evaluations += 1;
      if (this.fits(k, a) && this.confirm(k, a)) return this.place(request, kindIndex, a);
      const gap = this.gap(k, a);
      if (Number.isFinite(gap)) near.push({ slot: a, gap });
    }
    near.sort((x, y) => x.gap - y.gap || x.slot - y.slot);
    const deficit = new Float64Array(this.D);
    for (const { slot: a } of near.slice(0, EJECT_AGENTS_PER_TASK)) {
      if (this.spent()) return false;
      const row = a * this.D;
      for (let d = 0; d < this.D; d++) deficit[d] = Math.max(0, (k.demand[d] ?? 0) - (this.ledger.free[row + d] ?? 0));
      const here = [...(this.onAgent.get(a) ?? [])];
      // One mover away.
      const tried = new Set<number>();
      for (const i of here) {
        const m = this.movers[i];
        if (!m || tried.has(m.kind)) continue;
        tried.add(m.kind);
        this.evaluations += 1;
        if (!this.covers(deficit, m.kind, -1)) continue;
        if (this.moveOutAndPlace(request, kindIndex, a, [i])) return true;
      }
      // Two movers away.
      const pairs = new Set<string>();
      for (let x = 0; x < here.length; x++) {
        for (let y = x + 1; y < here.length; y++) {
          const i = here[x] ?? 0;
          const j = here[y] ?? 0;
          const mi = this.movers[i];
          const mj = this.movers[j];
          if (!mi || !mj) continue;
          const pk = mi.kind < mj.kind ? `${mi.kind},${mj.kind}` : `${mj.kind},${mi.kind}`;
          if (pairs.has(pk)) continue;
          pairs.add(pk);
          this.evaluations += 1;
          if (!this.covers(deficit, mi.kind, mj.kind)) continue;
          if (this.moveOutAndPlace(request, kindIndex, a, [i, j])) return true;
          if (this.spent()) return false;
        }
      }
    }
    return false;
  }

  /** gap is how far an agent is from fitting a kind (sum over short dims, relative), Infinity if it cannot host the kind at all. */
  private gap(k: Kind, slot: number): number {
    const row = slot * this.D;
    let g = 0;
    for (let j = 0; j < k.asked.length; j++) {
      const d = k.asked[j] ?? 0;
      const cap = this.ledger.allocatable[row + d] ?? 0;
      const need = k.demand[d] ?? 0;
      if (need > cap + RESOURCE_EPSILON) return Number.POSITIVE_INFINITY;
      const short = need - (this.ledger.free[row + d] ?? 0);
      if (short > 0) g += short / cap;
    }
    return g;
  }

  /** covers says whether removing tasks of kinds a (and b, unless -1) frees at least `deficit` in every dim. */
  private covers(deficit: Float64Array, a: number, b: number): boolean {
    const ka = this.kinds[a];
    const kb = b >= 0 ? this.kinds[b] : undefined;
    if (!ka) return false;
    for (let d = 0; d < this.D; d++) {
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
  private moveOutAndPlace(request: PlacementRequest, kindIndex: number, a: number, out: number[]): boolean {
    const k = this.kinds[kindIndex];
    if (!k) return false;
    for (const i of out) {
      const m = this.movers[i];
      const mk = m ? this.kinds[m.kind] : undefined;
      if (m && mk) this.release(mk, a);
    }
    const undo = (moved: { i: number; to: number }[]) => {
      for (const { i, to } of moved) {
        const m = this.movers[i];
        const mk = m ? this.kinds[m.kind] : undefined;
        if (mk) this.release(mk, to);
      }
      for (const i of out) {
        const m = this.movers[i];
        const mk = m ? this.kinds[m.kind] : undefined;
        if (m && mk) this.reserve(mk, a);
      }
    };
    if (!this.fits(k, a) || !this.confirm(k, a)) {
      undo([]);
      return false;
    }
    // Hold the target's room while the movers look for theirs.
    this.reserve(k, a);
    const moved: { i: number; to: number }[] = [];
    for (const i of out) {
      const m = this.movers[i];
      // Only the first mover sees the pass's state (bar agent a), so only its failure may be cached.
      const to = m ? this.bestHost(m.kind, a, moved.length === 0) : -1;
      const mk = m ? this.kinds[m.kind] : undefined;
      if (!m || !mk || to < 0) {
        this.release(k, a);
        undo(moved);
        return false;
      }
      this.reserve(mk, to);
      moved.push({ i, to });
    }
    this.release(k, a);
    for (const { i, to } of moved) this.relocate(i, to);
    return this.place(request, kindIndex, a);
  }

  /** bestHost is the agent (not `except`) that fits a kind with the least left over, or -1. */
  private bestHost(kindIndex: number, except: number, cache: boolean): number {
    const k = this.kinds[kindIndex];
    if (!k || this.noHost.get(kindIndex) === this.version) return -1;
    let best = -1;
    let bestLeft = Number.POSITIVE_INFINITY;
    let other = false;
    for (const b of this.hostsOf(kindIndex)) {
      this.evaluations += 1;
      if (!this.fits(k, b)) continue;
      if (b === except) {
        other = true;
        continue;
      }
      const left = this.leftover(k, b);
      if (left < bestLeft - 1e-12 && this.confirm(k, b)) {
        bestLeft = left;
        best = b;
      }
    }
    if (best < 0 && !other && cache) this.noHost.set(kindIndex, this.version);
    return best;
  }

  /** place commits a target on an agent and makes it a mover. */
  private place(request: PlacementRequest, kindIndex: number, a: number): boolean {
    const slot = this.ledger.slots[a];
    if (!slot) return false;
    this.host.commit(request, slot.agent, false);
    this.addMover(this.host.placed[this.host.placed.length - 1] as RepairPlacement, kindIndex, a);
    this.version += 1;
    return true;
  }
}
