/**
 * schedule(): snapshot + desired state + seed in, plan out. Pure: no I/O, no clock, no Math.random.
 *
 *   reconcile → reserve (other plans, keeps, held replacements) → everyAgent tasks on their agents
 *   → units (one per group), largest dominant share first
 *   → when capacity is short: DRF between projects picks whose unit goes next, task by task
 *   → per unit: level 1 (idc + cluster) → level 2 (resource plan) or per task: candidates → filter
 *     → score → select (reserving at once) → name new everyAgent tasks → stranded capacity → plan.
 */
import { GroupCandidates, StaticClasses, fitCount, groupDemandOf, pinnedClusterRejection } from './candidates.js';
import type { GroupDemand } from './candidates.js';
import { FEASIBILITY_CHAIN, NO_AGENTS_REASON, RejectionTally, firstRejection } from './feasibility.js';
import { ProjectShares } from './fairness.js';
import { ClusterLedger, groupKey } from './ledger.js';
import type { AgentSlot } from './ledger.js';
import { SCORE_TIE_EPSILON, placeTask, selectBest } from './place.js';
import type { PlacementRequest } from './reconcile.js';
import { parseTaskIndex, reconcile, taskId, isLive } from './reconcile.js';
import { copyResources, dominantShare, RESOURCE_EPSILON } from './resources.js';
import { createRng } from './rng.js';
import type { Rng } from './rng.js';
import { scorerFor } from './score.js';
import { splitTotal } from './split.js';
import type { SplitAgent } from './split.js';
import type {
  ActualTask,
  AgentSnapshot,
  DesiredGroup,
  GroupDecision,
  Placement,
  PlacementReason,
  ProjectPolicy,
  ResourceVector,
  SchedulePlan,
  SchedulerInput,
  Stop,
  TaskResources,
  Unplaced,
} from './types.js';

interface Placed {
  request: PlacementRequest;
  agent: AgentSnapshot;
  reason: PlacementReason;
}

/** isResourcePlan says whether a group is a resource plan (total + shapes) rather than a count of tasks. */
export function isResourcePlan(g: DesiredGroup): boolean {
  return g.total !== undefined && (g.shapes?.length ?? 0) > 0 && !g.everyAgent;
}

/** Unit is one group's pending work: its placement requests in index order, or its resource plan. */
interface Unit {
  group: DesiredGroup;
  requests: PlacementRequest[];
  next: number;
  share: number;
  /** existing tasks of a resource-plan group. */
  existing?: ActualTask[];
  state?: UnitState;
}

/** UnitState is level 1's decision for a counted unit and the candidate list it placed from. */
interface UnitState {
  decision: GroupDecision;
  demand: GroupDemand;
  candidates?: GroupCandidates;
  /** cluster the unit is confined to ('' when none was chosen). */
  cluster: string;
  exhausted?: { reason: string; causes: Record<string, number>; releases: number };
}

/** Scheduling is the working state of one schedule() call. */
class Scheduling {
  readonly ledger: ClusterLedger;
  readonly classes: StaticClasses;
  readonly shares: ProjectShares;
  readonly rng: Rng;
  /** totalVector is the allocatable total of the ready agents over the ledger's dims. */
  readonly totalVector: Float64Array;
  readonly keep: ActualTask[] = [];
  readonly stop: Stop[] = [];
  readonly unplaced: Unplaced[] = [];
  readonly placed: Placed[] = [];
  readonly decisions: GroupDecision[] = [];
  private readonly vectors = new WeakMap<object, Float64Array>();
  /** clustersOfGroup counts, per group key, the live tasks it keeps or replaces per cluster (sticky level 1). */
  readonly clustersOfGroup = new Map<string, Map<string, number>>();

  constructor(
    readonly input: SchedulerInput,
    agents: readonly AgentSnapshot[],
    scalars: Iterable<string>,
    readonly projects: Record<string, ProjectPolicy>,
  ) {
    this.ledger = new ClusterLedger(agents, scalars);
    this.classes = new StaticClasses(this.ledger, projects);
    this.totalVector = this.ledger.vectorOf(this.ledger.totalAllocatable());
    this.shares = new ProjectShares(this.ledger, projects, this.totalVector);
    this.rng = createRng(input.seed);
  }

  /** vec packs task resources over the ledger's dims (cached per object). */
  vec(r: TaskResources): Float64Array {
    let v = this.vectors.get(r);
    if (!v) this.vectors.set(r, (v = this.ledger.vectorOf(r)));
    return v;
  }

  /** hold charges a task to its agent and its project. */
  hold(agent: string, key: string, project: string, res: TaskResources): void {
    this.ledger.reserve(agent, key, res);
    if (this.ledger.indexOf(agent) >= 0) this.shares.add(project, this.vec(res), 1);
  }

  /** unhold undoes hold. */
  unhold(agent: string, key: string, project: string, res: TaskResources): void {
    this.ledger.release(agent, key, res);
    if (this.ledger.indexOf(agent) >= 0) this.shares.add(project, this.vec(res), -1);
  }

  /** noteCluster remembers that a live task of a group runs in a cluster (level 1 keeps groups where they run). */
  noteCluster(t: ActualTask): void {
    const slot = this.ledger.slot(t.agent);
    if (!slot || !isLive(t.state)) return;
    const key = groupKey(t);
    let m = this.clustersOfGroup.get(key);
    if (!m) this.clustersOfGroup.set(key, (m = new Map()));
    m.set(slot.agent.cluster, (m.get(slot.agent.cluster) ?? 0) + 1);
  }

  /** begin releases what a replacement request held for the task it replaces. */
  begin(request: PlacementRequest): void {
    const old = request.replaces;
    if (request.holdsResources && old) this.unhold(old.agent, groupKey(old), old.project, old.resources);
  }

  /** commit places a request on an agent: reserve, record, stop what it replaces. */
  commit(request: PlacementRequest, agent: AgentSnapshot): void {
    const g = request.group;
    const old = request.replaces;
    this.hold(agent.name, groupKey(g), g.project, g.resources);
    const movedRestart = request.reason === 'restart' && old !== undefined && old.agent !== agent.name;
    const reason: PlacementReason = movedRestart ? 'reschedule' : request.reason;
    this.placed.push({ request, agent, reason });
    const inPlaceRestart = request.reason === 'restart' && !movedRestart;
    if (old && !inPlaceRestart) this.stop.push({ task: old, reason: request.replaceStop ?? 'reschedule' });
    this.input.observer?.decided(true);
  }

  /** fail records a request that fits nowhere; an update that fits nowhere keeps the old version running. */
  fail(request: PlacementRequest, reason: string, causes: Record<string, number>): void {
    const old = request.replaces;
    if (old && request.reason === 'update' && isLive(old.state) && request.holdsResources) {
      this.hold(old.agent, groupKey(old), old.project, old.resources);
      this.keep.push(old);
    }
    if (request.reportIfUnplaced) {
      const g = request.group;
      this.unplaced.push({ task: request.task ?? `${g.plan}/${g.group}/?`, plan: g.plan, group: g.group, project: g.project, reason, causes });
    }
    this.input.observer?.decided(false);
  }

  /** quotaCheck returns the unplaced reason when the task would exceed its project's quota. */
  quotaCheck(g: DesiredGroup, res: Float64Array): string | undefined {
    return this.shares.quotaExceeded(g.project, res);
  }

  /** placePinned places an everyAgent request on its agent (reference chain, project pinning, quota). */
  placePinned(request: PlacementRequest): void {
    this.begin(request);
    const g = request.group;
    const quota = this.quotaCheck(g, this.vec(g.resources));
    if (quota) return this.fail(request, quota, { [`quota of project ${g.project}`]: 1 });
    const slot = request.pinnedAgent !== undefined ? this.ledger.slot(request.pinnedAgent) : undefined;
    const pin = slot ? pinnedClusterRejection(slot.agent.cluster, g.project, this.projects[g.project]) : undefined;
    if (pin) return this.fail(request, `no agent fits: ${pin.cause}: 1 agent`, { [pin.cause]: 1 });
    const outcome = placeTask(this.ledger, g, request, this.rng);
    if (outcome.placed) this.commit(request, outcome.slot.agent);
    else this.fail(request, outcome.reason, outcome.causes);
  }

  /** level1 chooses the idc and cluster of a counted unit and builds its candidate list. */
  level1(unit: Unit): UnitState {
    const g = unit.group;
    const ledger = this.ledger;
    const demand = groupDemandOf(ledger, g);
    const byCluster = this.classes.candidatesByCluster(g);
    const decision: GroupDecision = { plan: g.plan, group: g.group, project: g.project, idc: '', cluster: '' };
    this.decisions.push(decision);
    const clusters = [...byCluster.keys()].sort();
    if (clusters.length === 0) return { decision, demand, cluster: '' };
    let chosen = clusters[0] ?? '';
    if (clusters.length > 1) {
      const need = unit.requests.length;
      const dom = dominantDim(ledger, demand, this.totalVector);
      const D = ledger.dims.length;
      // an agent without room for one task in the first asked dim fits none (what fitCount would say)
      const freeOf = ledger.free;
      const k0 = demand.asked[0] ?? -1;
      const amount0 = k0 >= 0 ? (demand.amount[k0] ?? 0) : 0;
      const stats = clusters.map((c) => {
        let fit = 0;
        let free = 0;
        for (const i of byCluster.get(c) ?? []) {
          if (fit < need && (k0 < 0 || ((freeOf[i * D + k0] ?? 0) + RESOURCE_EPSILON) / amount0 >= 1)) fit += fitCount(ledger, i, g, demand, need - fit);
          free += freeOf[i * D + dom] ?? 0;
        }
        return { c, fit, free };
      });
      const running = this.clustersOfGroup.get(groupKey(g));
      const sticky = running ? [...running.entries()].filter(([c]) => byCluster.has(c)).sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]))[0]?.[0] : undefined;
      const holders = stats.filter((s) => s.fit >= need).sort((a, b) => b.free - a.free || cmp(a.c, b.c));
      if (sticky !== undefined) {
        chosen = sticky;
        decision.note = `kept in ${sticky}, where the group runs`;
      } else if (holders[0]) {
        chosen = holders[0].c;
        decision.note = `${holders.length} of ${clusters.length} clusters hold all ${need} tasks; most free ${ledger.dims[dom]}`;
      } else {
        const best = [...stats].sort((a, b) => b.fit - a.fit || b.free - a.free || cmp(a.c, b.c))[0];
        chosen = best?.c ?? chosen;
        decision.note = `no cluster holds all ${need} tasks (${[...stats].sort((a, b) => b.fit - a.fit || cmp(a.c, b.c)).slice(0, 4).map((s) => `${s.c} fits ${s.fit}`).join(', ')}${stats.length > 4 ? ', …' : ''})`;
      }
    }
    const list = byCluster.get(chosen) ?? [];
    const first = ledger.slots[list[0] ?? 0];
    decision.cluster = chosen;
    decision.idc = first?.agent.idc ?? '';
    return { decision, demand, cluster: chosen, candidates: new GroupCandidates(ledger, g, demand, Int32Array.from(list)) };
  }

  /** placeCounted places the unit's next request. */
  placeCounted(unit: Unit): void {
    const request = unit.requests[unit.next++];
    if (!request) return;
    this.begin(request);
    const g = request.group;
    if (this.ledger.slots.length === 0) return this.fail(request, NO_AGENTS_REASON, {});
    const quota = this.quotaCheck(g, this.vec(g.resources));
    if (quota) return this.fail(request, quota, { [`quota of project ${g.project}`]: 1 });
    if (request.preferredAgent !== undefined) {
      const slot = this.ledger.slot(request.preferredAgent);
      if (slot && !firstRejection(FEASIBILITY_CHAIN, slot, g) && !pinnedClusterRejection(slot.agent.cluster, g.project, this.projects[g.project])) {
        return this.commit(request, slot.agent);
      }
    }
    const st = (unit.state ??= this.level1(unit));
    if (st.exhausted && st.exhausted.releases === this.ledger.releases) return this.fail(request, st.exhausted.reason, st.exhausted.causes);
    const idx = st.candidates ? st.candidates.select(this.rng, SCORE_TIE_EPSILON) : -1;
    const slot = idx >= 0 ? this.ledger.slots[idx] : undefined;
    if (slot) return this.commit(request, slot.agent);
    // Authoritative: the reference chain over every agent, each tallied under its first failing check.
    const tally = new RejectionTally();
    const feasible: AgentSlot[] = [];
    const policy = this.projects[g.project];
    for (const s of this.ledger.slots) {
      const r = firstRejection(FEASIBILITY_CHAIN, s, g) ?? pinnedClusterRejection(s.agent.cluster, g.project, policy);
      if (r) tally.add(r);
      else if (st.cluster === '' || s.agent.cluster === st.cluster) feasible.push(s);
      else tally.add({ cause: `cluster ${st.cluster} chosen for the group`, wording: 'agents' });
    }
    const best = selectBest(feasible, g, scorerFor(g.strategy), this.rng);
    if (best) return this.commit(request, best.agent);
    const note = st.decision.note && st.decision.note.startsWith('no cluster') ? ` (${st.decision.note}; placed in ${st.cluster})` : '';
    st.exhausted = { reason: `${tally.describe()}${note}`, causes: tally.causes(), releases: this.ledger.releases };
    this.fail(request, st.exhausted.reason, st.exhausted.causes);
  }

  /** placeSplit runs level 1 and level 2 for a resource-plan unit: the whole group, or nothing. */
  placeSplit(unit: Unit): void {
    const g = unit.group;
    const total = g.total?.cpus ?? 0;
    const shapes = g.shapes ?? [];
    const key = groupKey(g);
    const existing = unit.existing ?? [];
    const decision: GroupDecision = { plan: g.plan, group: g.group, project: g.project, idc: '', cluster: '' };
    this.decisions.push(decision);
    const summarize = (vms: { cpus: number; mem: number }[]) => {
      const m = new Map<string, { cpus: number; mem: number; count: number }>();
      for (const v of vms) {
        const k = `${v.cpus}/${v.mem}`;
        const e = m.get(k);
        if (e) e.count += 1;
        else m.set(k, { cpus: v.cpus, mem: v.mem, count: 1 });
      }
      return [...m.values()].sort((a, b) => b.cpus - a.cpus || b.mem - a.mem);
    };
    // Stable: what runs already is an exact split of the same spec → keep it, move nothing.
    if (isStableSplit(g, existing, this.ledger)) {
      for (const t of existing) this.keep.push(t);
      const a = this.ledger.slot(existing[0]?.agent ?? '')?.agent;
      decision.idc = a?.idc ?? '';
      decision.cluster = a?.cluster ?? '';
      decision.split = summarize(existing.map((t) => t.resources));
      decision.note = 'running split kept';
      return;
    }
    const held = existing.filter((t) => isLive(t.state) && this.ledger.slot(t.agent));
    for (const t of held) this.unhold(t.agent, key, t.project, t.resources);
    const failWith = (reason: string, causes: Record<string, number>) => {
      for (const t of held) {
        this.hold(t.agent, key, t.project, t.resources);
        this.keep.push(t);
      }
      this.unplaced.push({ task: `${g.plan}/${g.group}/?`, plan: g.plan, group: g.group, project: g.project, reason, causes });
      this.input.observer?.decided(false);
    };
    const totalVec = this.ledger.vectorOf({ cpus: total });
    const quota = this.quotaCheck(g, totalVec);
    if (quota) return failWith(quota, { [`quota of project ${g.project}`]: 1 });
    const rejections = this.classes.rejections(g);
    const tally = new RejectionTally();
    const byCluster = new Map<string, number[]>();
    this.ledger.slots.forEach((s, i) => {
      const r = rejections[this.classes.classOf[i] ?? 0];
      if (r) return tally.add(r);
      const list = byCluster.get(s.agent.cluster);
      if (list) list.push(i);
      else byCluster.set(s.agent.cluster, [i]);
    });
    const D = this.ledger.dims.length;
    const cpuCol = this.ledger.dimOf('cpus');
    const freeCpus = (list: number[]) => list.reduce((sum, i) => sum + (this.ledger.free[i * D + cpuCol] ?? 0), 0);
    const clusters = [...byCluster.entries()].sort((a, b) => freeCpus(b[1]) - freeCpus(a[1]) || cmp(a[0], b[0]));
    const shapeList = shapes.map((s) => s.cpus).join(', ');
    const tried: string[] = [];
    let noSum = false;
    for (const [cluster, list] of clusters) {
      const agents: SplitAgent[] = list.map((i) => ({
        id: i,
        free: ['cpus', 'mem', 'disk', 'gpus'].map((d) => this.ledger.free[i * D + this.ledger.dimOf(d)] ?? 0),
      }));
      const r = splitTotal(total, shapes, agents, g.maxPerAgent);
      if (!r.ok) {
        if (r.why === 'no-sum') noSum = true;
        const largest = Math.max(0, ...agents.map((a) => a.free[0] ?? 0));
        tried.push(`${cluster}: ${Number(freeCpus(list).toFixed(3))} cpus free on ${list.length} agent${list.length === 1 ? '' : 's'}, largest ${Number(largest.toFixed(3))}${r.why === 'budget' ? ', search budget spent' : ''}`);
        if (noSum) break;
        continue;
      }
      const vms = [...r.vms].sort((a, b) => (shapes[b.shape]?.cpus ?? 0) - (shapes[a.shape]?.cpus ?? 0) || (shapes[b.shape]?.mem ?? 0) - (shapes[a.shape]?.mem ?? 0) || a.agent - b.agent);
      const byIndex = new Map<number, ActualTask>();
      for (const t of existing) {
        const i = parseTaskIndex(t.task, g);
        if (i !== undefined && !byIndex.has(i)) byIndex.set(i, t);
      }
      const replaced = new Set<ActualTask>();
      vms.forEach((vm, i) => {
        const shape = shapes[vm.shape];
        const slot = this.ledger.slots[vm.agent];
        if (!shape || !slot) return;
        const resources: TaskResources = { cpus: shape.cpus, mem: shape.mem, disk: shape.disk, gpus: shape.gpus, scalars: {}, ports: [] };
        const old = byIndex.get(i);
        const request: PlacementRequest = {
          task: taskId(g, i),
          group: { ...g, resources },
          reason: old ? 'update' : 'new',
          holdsResources: false,
          reportIfUnplaced: true,
          ...(old ? { replaces: old, replaceStop: 'update' as const } : {}),
        };
        if (old) replaced.add(old);
        this.commit(request, slot.agent);
      });
      for (const t of existing) if (!replaced.has(t)) this.stop.push({ task: t, reason: 'scaled-down' });
      const first = this.ledger.slots[list[0] ?? 0]?.agent;
      decision.idc = first?.idc ?? '';
      decision.cluster = cluster;
      decision.split = summarize(vms.map((v) => shapes[v.shape] ?? { cpus: 0, mem: 0 }));
      decision.note = clusters.length > 1 ? `first of ${clusters.length} clusters (most free cpus first) with an exact split` : undefined;
      if (decision.note === undefined) delete decision.note;
      return;
    }
    const statics = tally.parts();
    const head = noSum
      ? `${total} cpus is not a sum of VMs of ${shapeList} cpus`
      : `no exact split of ${total} cpus into VMs of ${shapeList} cpus fits`;
    const where = tried.length > 0 && !noSum ? `: ${tried.join('; ')}` : clusters.length === 0 ? ': no agent passes the static checks' : '';
    failWith(`${head}${where}${statics.length > 0 ? `; ${statics.join('; ')}` : ''}`, tally.causes());
  }
}

function dominantDim(ledger: ClusterLedger, demand: GroupDemand, total: Float64Array): number {
  let best = ledger.dimOf('cpus');
  let share = -1;
  for (const k of demand.asked) {
    const t = total[k] ?? 0;
    const s = t > 0 ? (demand.amount[k] ?? 0) / t : 0;
    if (s > share) {
      share = s;
      best = k;
    }
  }
  return best;
}

function sameShape(r: TaskResources, s: { cpus: number; mem: number; disk: number; gpus: number }): boolean {
  return Math.abs(r.cpus - s.cpus) < RESOURCE_EPSILON && r.mem === s.mem && r.disk === s.disk && r.gpus === s.gpus;
}

/** isStableSplit says whether a resource plan's running tasks are already an exact split of the same spec. */
function isStableSplit(g: DesiredGroup, existing: readonly ActualTask[], ledger: ClusterLedger): boolean {
  if (existing.length === 0) return false;
  const seen = new Set<number>();
  let sum = 0;
  for (const t of existing) {
    const state = ledger.slot(t.agent)?.agent.state;
    if (!isLive(t.state) || (state !== 'ready' && state !== 'draining') || t.specHash !== g.specHash) return false;
    if (!(g.shapes ?? []).some((s) => sameShape(t.resources, s))) return false;
    const i = parseTaskIndex(t.task, g);
    if (i === undefined || i >= existing.length || seen.has(i)) return false;
    seen.add(i);
    sum += t.resources.cpus;
  }
  return Math.abs(sum - (g.total?.cpus ?? 0)) < RESOURCE_EPSILON;
}

/** strandedCapacity sums, per dim, the free capacity of ready agents on which no demand of the pass fits. */
function strandedCapacity(ledger: ClusterLedger, demands: Float64Array[]): Record<string, number> {
  const D = ledger.dims.length;
  const out = new Float64Array(D);
  // one per group: 1,000 groups have a handful of shapes, and a full agent tries every one of them
  const unique = new Map<string, Float64Array>();
  for (const d of demands) unique.set(d.join(','), d);
  const sorted = [...unique.values()].sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
  if (sorted.length > 0) {
    ledger.slots.forEach((s, i) => {
      if (s.agent.state !== 'ready') return;
      const row = i * D;
      const fits = sorted.some((d) => {
        for (let k = 0; k < D; k++) if ((d[k] ?? 0) > 0 && (d[k] ?? 0) > (ledger.free[row + k] ?? 0) + RESOURCE_EPSILON) return false;
        return true;
      });
      if (fits) return;
      for (let k = 0; k < D; k++) out[k] = (out[k] ?? 0) + Math.max(0, ledger.free[row + k] ?? 0);
    });
  }
  const result: Record<string, number> = {};
  ledger.dims.forEach((d, k) => (result[d] = Number((out[k] ?? 0).toFixed(6))));
  return result;
}

/** schedule turns a cluster snapshot and the desired state of some plans into a SchedulePlan. */
export function schedule(input: SchedulerInput): SchedulePlan {
  const projects = input.projects ?? {};
  const applied = new Set([...input.plans, ...input.groups.map((g) => g.plan)]);
  const splitGroups = new Map<string, DesiredGroup>();
  for (const g of input.groups) if (isResourcePlan(g) && !splitGroups.has(groupKey(g))) splitGroups.set(groupKey(g), g);
  const splitActual = new Map<string, ActualTask[]>();
  const restActual: ActualTask[] = [];
  for (const t of input.actual) {
    const key = groupKey(t);
    if (applied.has(t.plan) && splitGroups.has(key)) {
      const list = splitActual.get(key);
      if (list) list.push(t);
      else splitActual.set(key, [t]);
    } else restActual.push(t);
  }
  const scalars = new Set<string>();
  for (const g of input.groups) for (const k of Object.keys(g.resources.scalars)) scalars.add(k);
  for (const t of input.actual) for (const k of Object.keys(t.resources.scalars)) scalars.add(k);

  const s = new Scheduling(input, input.agents, scalars, projects);
  const ledger = s.ledger;
  const counted = input.groups.filter((g) => !splitGroups.has(groupKey(g)));
  const rec = reconcile({ ...input, groups: counted, actual: restActual, plans: [...applied] }, ledger);
  s.keep.push(...rec.keep);
  s.stop.push(...rec.stop);

  for (const t of rec.others) s.hold(t.agent, groupKey(t), t.project, t.resources);
  for (const t of rec.keep) {
    s.hold(t.agent, groupKey(t), t.project, t.resources);
    s.noteCluster(t);
  }
  for (const r of rec.requests) {
    if (r.replaces) s.noteCluster(r.replaces);
    if (r.holdsResources && r.replaces) s.hold(r.replaces.agent, groupKey(r.replaces), r.replaces.project, r.replaces.resources);
  }
  for (const [key, tasks] of splitActual) {
    for (const t of tasks) if (isLive(t.state) && ledger.slot(t.agent)) s.hold(t.agent, key, t.project, t.resources);
  }

  // everyAgent tasks go to their agents first.
  const total = ledger.totalAllocatable();
  const pinned = rec.requests.filter((r) => r.pinnedAgent !== undefined);
  for (const r of orderRequests(pinned, total)) s.placePinned(r);

  // One unit per group: counted groups with their requests in index order, resource plans whole.
  const units = new Map<string, Unit>();
  for (const r of rec.requests) {
    if (r.pinnedAgent !== undefined) continue;
    const key = groupKey(r.group);
    let u = units.get(key);
    if (!u) units.set(key, (u = { group: r.group, requests: [], next: 0, share: dominantShare(r.group.resources, total) }));
    u.requests.push(r);
  }
  // reconcile emits each group's requests in index order already.
  for (const [key, g] of splitGroups) {
    units.set(key, { group: g, requests: [], next: 0, share: dominantShare({ cpus: g.total?.cpus ?? 0, mem: 0, disk: 0, gpus: 0, scalars: {} }, total), existing: splitActual.get(key) ?? [] });
  }
  const ordered = [...units.values()].sort((a, b) => (a.share !== b.share ? (a.share > b.share ? -1 : 1) : cmp(groupKey(a.group), groupKey(b.group))));
  const run = (u: Unit): boolean => {
    if (isResourcePlan(u.group)) {
      s.placeSplit(u);
      return true;
    }
    s.placeCounted(u);
    return u.next >= u.requests.length;
  };

  if (!capacityIsShort(ledger, ordered, s)) {
    for (const u of ordered) while (!run(u));
  } else {
    // DRF: the project with the smallest weighted dominant share places its next task.
    const queues = new Map<string, Unit[]>();
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
        const share = s.shares.share(p);
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

  const demands: Float64Array[] = [];
  for (const g of input.groups) {
    if (isResourcePlan(g)) for (const sh of g.shapes ?? []) demands.push(ledger.vectorOf({ ...sh, scalars: {} }));
    else demands.push(s.vec(g.resources));
  }
  const create = namePlacements(s.placed, rec.usedIndices);
  const stop = s.stop;
  return {
    create,
    stop,
    keep: s.keep,
    unplaced: s.unplaced,
    changes: {
      create: create.filter((p) => p.reason !== 'update').length,
      destroy: stop.filter((x) => x.reason === 'removed' || x.reason === 'scaled-down' || x.reason === 'destroy').length,
      update: create.filter((p) => p.reason === 'update').length,
    },
    stranded: strandedCapacity(ledger, demands),
    groups: s.decisions.sort((a, b) => cmp(`${a.plan}/${a.group}`, `${b.plan}/${b.group}`)),
  };
}

/** capacityIsShort says whether the pending units ask for more than the ready agents have free in some dim (then DRF decides). */
function capacityIsShort(ledger: ClusterLedger, units: readonly Unit[], s: Scheduling): boolean {
  const D = ledger.dims.length;
  const free = new Float64Array(D);
  ledger.slots.forEach((slot, i) => {
    if (slot.agent.state !== 'ready') return;
    for (let k = 0; k < D; k++) free[k] = (free[k] ?? 0) + Math.max(0, ledger.free[i * D + k] ?? 0);
  });
  const demand = new Float64Array(D);
  for (const u of units) {
    if (isResourcePlan(u.group)) {
      demand[ledger.dimOf('cpus')] = (demand[ledger.dimOf('cpus')] ?? 0) + (u.group.total?.cpus ?? 0);
      continue;
    }
    const v = s.vec(u.group.resources);
    for (let k = 0; k < D; k++) demand[k] = (demand[k] ?? 0) + (v[k] ?? 0) * u.requests.length;
  }
  for (let k = 0; k < D; k++) if ((demand[k] ?? 0) > (free[k] ?? 0) + RESOURCE_EPSILON) return true;
  return false;
}

/**
 * orderRequests sorts placement requests: pinned ones (everyAgent) first by group and agent, then the
 * rest by larger dominant share first, then plan, group and index — large tasks first packs better.
 */
export function orderRequests(requests: readonly PlacementRequest[], total: ResourceVector): PlacementRequest[] {
  const share = new Map<PlacementRequest, number>();
  for (const r of requests) share.set(r, dominantShare(r.group.resources, total));
  const index = (r: PlacementRequest): number => (r.task === undefined ? -1 : (parseTaskIndex(r.task, r.group) ?? -1));
  return [...requests].sort((a, b) => {
    const pa = a.pinnedAgent !== undefined ? 0 : 1;
    const pb = b.pinnedAgent !== undefined ? 0 : 1;
    if (pa !== pb) return pa - pb;
    if (pa === 1) {
      const sa = share.get(a) ?? 0;
      const sb = share.get(b) ?? 0;
      if (sa !== sb) return sa > sb ? -1 : 1;
    }
    return (
      cmp(groupKey(a.group), groupKey(b.group)) ||
      cmp(a.pinnedAgent ?? '', b.pinnedAgent ?? '') ||
      index(a) - index(b)
    );
  });
}

/** namePlacements builds the Placements, giving new everyAgent tasks the lowest free indices in agent-name order. */
function namePlacements(placed: readonly Placed[], usedIndices: Map<string, Set<number>>): Placement[] {
  const unnamed = placed.filter((p) => p.request.task === undefined).sort((a, b) =>
    cmp(groupKey(a.request.group), groupKey(b.request.group)) || cmp(a.agent.name, b.agent.name),
  );
  const names = new Map<Placed, string>();
  for (const p of unnamed) {
    const key = groupKey(p.request.group);
    let used = usedIndices.get(key);
    if (!used) usedIndices.set(key, (used = new Set()));
    let i = 0;
    while (used.has(i)) i++;
    used.add(i);
    names.set(p, taskId(p.request.group, i));
  }
  // Tasks of one group share one copy of its resources (100k placements, a few hundred groups).
  const copies = new Map<TaskResources, TaskResources>();
  const setCopy = (r: TaskResources): TaskResources => {
    const c = copyTaskResources(r);
    copies.set(r, c);
    return c;
  };
  return placed.map((p) => {
    const g = p.request.group;
    return {
      task: p.request.task ?? names.get(p) ?? '',
      plan: g.plan,
      group: g.group,
      project: g.project,
      idc: p.agent.idc,
      cluster: p.agent.cluster,
      agent: p.agent.name,
      driver: g.driver,
      specHash: g.specHash,
      resources: copies.get(g.resources) ?? setCopy(g.resources),
      reason: p.reason,
    };
  });
}

function copyTaskResources(r: TaskResources): TaskResources {
  return { ...copyResources(r), ports: [...r.ports] };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
