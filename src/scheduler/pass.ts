/**
 * The working state of one schedule() call: the ledger, the projects' shares, the Rng, the placement
 * pipeline, and what the pass has decided so far (keeps, stops, placements, unplaced tasks). Every
 * reservation goes through hold/unhold so that an agent and the task's project are charged together.
 */
import { ProjectShares } from './fairness.js';
import { ClusterLedger, groupKey } from './ledger.js';
import { PlacementPipeline } from './pipeline.js';
import type { PlaceOutcome, UnitPlacement } from './pipeline.js';
import type { PlacementRequest } from './reconcile.js';
import { isLive } from './reconcile.js';
import { createRng } from './rng.js';
import type { Rng } from './rng.js';
import type { ActualTask, AgentSnapshot, DesiredGroup, PlacementReason, ProjectPolicy, SchedulerInput, Stop, TaskResources, Unplaced } from './types.js';

/** Placed is a request and the agent it went to. */
export interface Placed {
  request: PlacementRequest;
  agent: AgentSnapshot;
  reason: PlacementReason;
}

/** Unit is one group's pending work: its placement requests in index order, or its resource plan. */
export interface Unit {
  group: DesiredGroup;
  requests: PlacementRequest[];
  next: number;
  share: number;
  /** existing tasks of a resource-plan group. */
  existing?: ActualTask[];
  /** placement is level 1's decision and the candidate list, once the pipeline built them. */
  placement?: UnitPlacement;
}

/** SchedulingPass is the working state of one schedule() call. */
export class SchedulingPass {
  readonly ledger: ClusterLedger;
  readonly shares: ProjectShares;
  readonly rng: Rng;
  /** totalVector is the allocatable total of the ready agents over the ledger's dims. */
  readonly totalVector: Float64Array;
  readonly pipeline: PlacementPipeline;
  readonly keep: ActualTask[] = [];
  readonly stop: Stop[] = [];
  readonly unplaced: Unplaced[] = [];
  readonly placed: Placed[] = [];
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
    this.totalVector = this.ledger.vectorOf(this.ledger.totalAllocatable());
    this.shares = new ProjectShares(this.ledger, projects, this.totalVector);
    this.rng = createRng(input.seed);
    this.pipeline = new PlacementPipeline(this);
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

  /** commit places a request on an agent: reserve, record, stop what it replaces (`observe`: tell the observer; the repair does not, the request was decided already). */
  commit(request: PlacementRequest, agent: AgentSnapshot, observe = true): void {
    const g = request.group;
    const old = request.replaces;
    this.hold(agent.name, groupKey(g), g.project, g.resources);
    const movedRestart = request.reason === 'restart' && old !== undefined && old.agent !== agent.name;
    const reason: PlacementReason = movedRestart ? 'reschedule' : request.reason;
    this.placed.push({ request, agent, reason });
    const inPlaceRestart = request.reason === 'restart' && !movedRestart;
    if (old && !inPlaceRestart) this.stop.push({ task: old, reason: request.replaceStop ?? 'reschedule' });
    if (observe) this.input.observer?.decided(true);
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

  /** placePinned places an everyAgent request on its agent. */
  placePinned(request: PlacementRequest): void {
    this.begin(request);
    this.settle(request, this.pipeline.placePinned(request, this.vec(request.group.resources)));
  }

  /** placeCounted places the unit's next request. */
  placeCounted(unit: Unit): void {
    const request = unit.requests[unit.next++];
    if (!request) return;
    this.begin(request);
    this.settle(request, this.pipeline.placeCounted(request, unit, this.vec(request.group.resources)));
  }

  private settle(request: PlacementRequest, outcome: PlaceOutcome): void {
    if (outcome.placed) this.commit(request, outcome.slot.agent);
    else this.fail(request, outcome.reason, outcome.causes);
  }
}
