/**
 * The scheduler's working view of the cluster: per agent, what is still free, which static ports are
 * bound and how many tasks of each group it runs. Placements reserve here immediately, so later
 * placements never over-commit.
 *
 * Two views of the same numbers are kept in step: AgentSlot objects (read by the feasibility checks and
 * scorers, which explain decisions) and compact Float64Arrays indexed `agent * dims.length + dim`
 * (read by the packed checkers and scorers in the hot placement loop, candidates.ts).
 */
import { BUILTIN_DIMENSIONS, addResourcesInto, allocatableResources, amountOf, copyResources, requestedDimensions, zeroResources } from './resources.js';
import type { BuiltinDimension } from './resources.js';
import type { AgentSnapshot, DesiredGroup, ResourceVector, TaskResources } from './types.js';

/** AgentSlot is one agent plus its running totals during a scheduling pass. */
export interface AgentSlot {
  agent: AgentSnapshot;
  /** allocatable is capacity minus reserved. */
  allocatable: ResourceVector;
  /** free is allocatable minus everything reserved in this pass (may go negative if already over-committed). */
  free: ResourceVector;
  /** ports counts the tasks binding each static port. */
  ports: Map<number, number>;
  /** groupCounts counts tasks per `plan/group` key. */
  groupCounts: Map<string, number>;
}

/** groupKey is the `plan/group` key of a group or task. */
export function groupKey(x: { plan: string; group: string }): string {
  return `${x.plan}/${x.group}`;
}

/** compareKeys orders names and keys by UTF-16 code unit, the order slots, groups and decisions are sorted in. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** GroupDemand is a group's per-task demand packed over the ledger's dims, for the packed checkers and scorers. */
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

/** ClusterLedger holds an AgentSlot per agent (sorted by name) and reserves and releases task resources. */
export class ClusterLedger {
  /** slots are the agents sorted by name, for a deterministic scan order. */
  readonly slots: AgentSlot[];
  /** dims names the columns of `free` and `allocatable`: cpus, mem, disk, gpus, then custom scalars by name. */
  readonly dims: readonly string[];
  /** free is each slot's free amount per dim, row-major (`slot index * dims.length + dim index`). */
  readonly free: Float64Array;
  /** allocatable is each slot's allocatable amount per dim, laid out like `free`. */
  readonly allocatable: Float64Array;
  /** releases counts release() calls: a placement that failed before a release may succeed after it. */
  releases = 0;
  /**
   * changes counts the reserves and releases on each slot: while a slot's count is unchanged, nothing a
   * packed checker or scorer reads for it (free amounts, ports, group counts) changed.
   */
  readonly changes: Uint32Array;
  private readonly byName = new Map<string, AgentSlot>();
  private readonly indexByName = new Map<string, number>();
  private readonly dimIndex = new Map<string, number>();
  // per slot, the index of its cluster in `clusterIndex`; per cluster, how many reserves and releases touched it
  private readonly slotCluster: Int32Array;
  private readonly clusterIndex = new Map<string, number>();
  private readonly clusterChanges: number[] = [];

  /** The ledger's dims cover every scalar named by the agents and by `extraScalars` (the demands of the pass). */
  constructor(agents: readonly AgentSnapshot[], extraScalars: Iterable<string> = []) {
    const sorted = [...agents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.slots = [];
    const scalars = new Set<string>(extraScalars);
    for (const agent of sorted) {
      if (this.byName.has(agent.name)) continue;
      const allocatable = allocatableResources(agent);
      for (const k of Object.keys(allocatable.scalars)) scalars.add(k);
      const slot: AgentSlot = { agent, allocatable, free: copyResources(allocatable), ports: new Map(), groupCounts: new Map() };
      this.indexByName.set(agent.name, this.slots.length);
      this.slots.push(slot);
      this.byName.set(agent.name, slot);
    }
    this.dims = [...BUILTIN_DIMENSIONS, ...[...scalars].sort()];
    this.dims.forEach((d, i) => this.dimIndex.set(d, i));
    const D = this.dims.length;
    this.free = new Float64Array(this.slots.length * D);
    this.allocatable = new Float64Array(this.slots.length * D);
    this.slots.forEach((s, i) => {
      for (let k = 0; k < D; k++) this.allocatable[i * D + k] = amountOf(s.allocatable, this.dims[k] ?? '');
    });
    this.free.set(this.allocatable);
    this.changes = new Uint32Array(this.slots.length);
    this.slotCluster = new Int32Array(this.slots.length);
    this.slots.forEach((s, i) => {
      let c = this.clusterIndex.get(s.agent.cluster);
      if (c === undefined) {
        c = this.clusterChanges.length;
        this.clusterIndex.set(s.agent.cluster, c);
        this.clusterChanges.push(0);
      }
      this.slotCluster[i] = c;
    });
  }

  /**
   * clusterVersion counts the reserves and releases on a cluster's agents so far: while it is unchanged,
   * nothing a checker or scorer reads (free amounts, ports, group counts) changed on those agents.
   */
  clusterVersion(cluster: string): number {
    const c = this.clusterIndex.get(cluster);
    return c === undefined ? 0 : (this.clusterChanges[c] ?? 0);
  }

  /** indexOf returns the position of a named agent in `slots` (and its row in the arrays), or -1. */
  indexOf(name: string): number {
    return this.indexByName.get(name) ?? -1;
  }

  /** dimOf returns the column of a dimension, or -1 when no agent and no demand of the pass names it. */
  dimOf(dim: string): number {
    return this.dimIndex.get(dim) ?? -1;
  }

  /** vectorOf packs a ResourceVector into a Float64Array over `dims`. */
  vectorOf(v: Partial<ResourceVector>): Float64Array {
    const out = new Float64Array(this.dims.length);
    for (const dim of BUILTIN_DIMENSIONS) out[this.dimIndex.get(dim) ?? 0] = v[dim] ?? 0;
    for (const [k, amount] of Object.entries(v.scalars ?? {})) {
      const i = this.dimIndex.get(k);
      if (i !== undefined) out[i] = amount;
    }
    return out;
  }

  /** slot returns the slot of a named agent, or undefined if the agent is not in the snapshot. */
  slot(name: string): AgentSlot | undefined {
    return this.byName.get(name);
  }

  /** totalAllocatable sums the allocatable resources of the ready agents (for dominant shares). */
  totalAllocatable(): ResourceVector {
    const total = zeroResources();
    for (const s of this.slots) if (s.agent.state === 'ready') addResourcesInto(total, s.allocatable, 1);
    return total;
  }

  /** reserve charges a task's resources, ports and group count to an agent (no-op for an unknown agent). */
  reserve(agentName: string, key: string, res: TaskResources): void {
    this.apply(agentName, key, res, 1);
  }

  /** release undoes a reserve of the same task. */
  release(agentName: string, key: string, res: TaskResources): void {
    this.apply(agentName, key, res, -1);
  }

  private apply(agentName: string, key: string, res: TaskResources, sign: 1 | -1): void {
    // one lookup: the slot is at its index (byName and indexByName are filled together)
    const index = this.indexByName.get(agentName);
    const slot = index === undefined ? undefined : this.slots[index];
    if (index === undefined || !slot) return;
    if (sign === -1) this.releases += 1;
    addResourcesInto(slot.free, res, sign === 1 ? -1 : 1);
    const D = this.dims.length;
    this.changes[index] = (this.changes[index] ?? 0) + 1;
    const c = this.slotCluster[index] ?? 0;
    this.clusterChanges[c] = (this.clusterChanges[c] ?? 0) + 1;
    const row = index * D;
    for (let k = 0; k < BUILTIN_DIMENSIONS.length; k++) this.free[row + k] = (this.free[row + k] ?? 0) - sign * (res[BUILTIN_DIMENSIONS[k] as BuiltinDimension] ?? 0);
    for (const name in res.scalars) {
      const i = this.dimIndex.get(name);
      if (i !== undefined) this.free[row + i] = (this.free[row + i] ?? 0) - sign * (res.scalars[name] ?? 0);
    }
    for (const port of res.ports) bump(slot.ports, port, sign);
    bump(slot.groupCounts, key, sign);
  }
}

function bump<K>(m: Map<K, number>, k: K, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
