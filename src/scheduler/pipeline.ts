/**
 * The placement pipeline, assembled in one place as Nomad's `NewGenericStack` builds its chain. Every
 * task of a counted group runs through these steps; each rule is defined once (feasibility.ts,
 * score.ts) and used here in its reference form (AgentSlot objects, the explanations) or its packed
 * form (the ledger's typed arrays, the hot loop).
 *
 *   quota        the project's quota (fairness.ts), before any agent is looked at
 *   preferred    the agent a replaced task ran on, if it passes the whole chain
 *   level 1      the group's idc and cluster, once per group (level1.ts)
 *   candidates   static checkers once per equivalence class; dynamic ones packed (candidates.ts)
 *   score        the strategy's scorer, packed; at most max(8, 2⌈log₂ n⌉) agents of long lists
 *   select       max score, ties broken by the seeded Rng
 *   reference    nothing in the sample: the full chain over every agent decides; its tally is the reason
 *
 * An everyAgent task's agent is given: quota, then the chain on that agent with project pinning asked
 * first. Resource plans (resource-plans.ts) use the same quota and static classes.
 */
import { GroupCandidates, StaticClasses } from './candidates.js';
import type { CheckContext, Checker, PackedCheck } from './feasibility.js';
import { FEASIBILITY_CHAIN, checkProjectPinning, firstRejection } from './feasibility.js';
import type { ProjectShares } from './fairness.js';
import { ClusterCounts, chooseCluster } from './level1.js';
import type { AgentSlot, ClusterLedger, GroupDemand } from './ledger.js';
import { groupDemandOf, groupKey } from './ledger.js';
import type { PlacementRequest } from './reconcile.js';
import { NO_AGENTS_REASON, RejectionTally } from './rejections.js';
import type { Rng } from './rng.js';
import { SCORE_TIE_EPSILON, scorerFor, selectBest } from './score.js';
import type { Scorer } from './score.js';
import type { DesiredGroup, GroupDecision, ProjectPolicy, Strategy } from './types.js';

/** PlaceOutcome is where a task goes, or why it goes nowhere. */
export type PlaceOutcome = { placed: true; slot: AgentSlot } | PlaceFailure;

/** PlaceFailure is the unplaced reason of a task and its causes (agents per cause). */
export interface PlaceFailure {
  placed: false;
  reason: string;
  causes: Record<string, number>;
}

/** UnitPlacement is level 1's decision for a counted group and the candidate list its tasks are placed from. */
export interface UnitPlacement {
  decision: GroupDecision;
  /** cluster the group is confined to ('' when none was chosen). */
  cluster: string;
  candidates?: GroupCandidates;
  /** exhausted is the reason of a task that fit nowhere; later tasks reuse it until something is released. */
  exhausted?: { reason: string; causes: Record<string, number>; releases: number };
}

/** PlacementUnit is the part of a counted unit the pipeline reads and writes. */
export interface PlacementUnit {
  group: DesiredGroup;
  /** requests are the unit's tasks; level 1 places their number. */
  requests: readonly unknown[];
  placement?: UnitPlacement;
}

/** PipelineInputs is the pass state the pipeline reads: the ledger, project policies and shares, the Rng. */
export interface PipelineInputs {
  ledger: ClusterLedger;
  projects: Readonly<Record<string, ProjectPolicy>>;
  shares: ProjectShares;
  rng: Rng;
  /** totalVector is the allocatable total of the ready agents over the ledger's dims. */
  totalVector: Float64Array;
  /** clustersOfGroup counts, per group key, its live tasks per cluster (level 1 keeps a group where it runs). */
  clustersOfGroup: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** PlacementPipeline places one task at a time through the steps above. */
export class PlacementPipeline {
  /** chain is the reference feasibility chain, in the order rejections are attributed. */
  readonly chain: readonly Checker[];
  /** pinnedChain is the chain for a task whose agent is given: project pinning first, then the rest in order. */
  readonly pinnedChain: readonly Checker[];
  /** classes runs the chain's static checkers once per equivalence class of agents. */
  readonly classes: StaticClasses;
  /** dynamic are the chain's checkers that depend on what the pass reserved; the hot loop uses their packed forms. */
  readonly dynamic: readonly Checker[];
  /** scorer returns the scorer of a strategy (score.ts). */
  readonly scorer: (strategy: Strategy) => Scorer;
  /** tieEpsilon is how close two scores must be to count as a tie. */
  readonly tieEpsilon: number;
  /** decisions are the level-1/level-2 decisions of the pass, one per group placed. */
  readonly decisions: GroupDecision[] = [];
  private readonly ctx: CheckContext;
  /** clusterCounts keeps level 1's per-cluster counts for clusters nothing was reserved on since. */
  private readonly clusterCounts = new ClusterCounts();

  constructor(private readonly pass: PipelineInputs) {
    this.ctx = { ledger: pass.ledger, projects: pass.projects };
    // 1. Feasibility: one chain, in attribution order (ready, driver, placement, constraints, maxPerAgent,
    //    ports, resources, project pinning). A task whose agent is given asks pinning first, so the
    //    reason names the pin rather than what else the agent lacks.
    this.chain = FEASIBILITY_CHAIN;
    this.pinnedChain = [checkProjectPinning, ...FEASIBILITY_CHAIN.filter((c) => c !== checkProjectPinning)];
    // 2. Static checkers read only what an equivalence class shares: evaluated once per class and group
    //    signature; level 1 and the candidate lists start from the classes that pass.
    this.classes = new StaticClasses(this.ctx, this.chain.filter((c) => c.static));
    // 3. Dynamic checkers run per agent per task, packed on the ledger's arrays in the hot loop and to
    //    count how many tasks fit (level 1).
    this.dynamic = this.chain.filter((c) => !c.static);
    // 4. Score by the group's strategy (binpack | spread); 5. select the max, ties by the seeded Rng.
    this.scorer = scorerFor;
    this.tieEpsilon = SCORE_TIE_EPSILON;
  }

  /** overQuota refuses a demand (packed over the ledger's dims) that would take the group's project over its quota. */
  overQuota(g: DesiredGroup, demand: Float64Array): PlaceFailure | undefined {
    const reason = this.pass.shares.quotaExceeded(g.project, demand);
    return reason === undefined ? undefined : { placed: false, reason, causes: { [`quota of project ${g.project}`]: 1 } };
  }

  /** packedChecks binds the dynamic checkers to a group (those that cannot reject it are left out). */
  packedChecks(g: DesiredGroup, demand: GroupDemand): PackedCheck[] {
    return this.packedChecksKeyed(g, demand).checks;
  }

  /** packedChecksKeyed is packedChecks with the key of what they read from the group (undefined when a checker has no packKey). */
  private packedChecksKeyed(g: DesiredGroup, demand: GroupDemand): { checks: PackedCheck[]; key: string | undefined } {
    const checks: PackedCheck[] = [];
    let key: string | undefined = '';
    for (const c of this.dynamic) {
      const p = c.pack?.(this.ctx, g, demand);
      if (!p) continue;
      checks.push(p);
      key = key !== undefined && c.packKey ? `${key}${c.name}:${c.packKey(g, demand)};` : undefined;
    }
    return { checks, key };
  }

  /** placePinned places an everyAgent task on its agent; `demand` is its resources packed. It does not reserve. */
  placePinned(request: PlacementRequest, demand: Float64Array): PlaceOutcome {
    const g = request.group;
    const quota = this.overQuota(g, demand);
    if (quota) return quota;
    const ledger = this.pass.ledger;
    if (ledger.slots.length === 0) return { placed: false, reason: NO_AGENTS_REASON, causes: {} };
    const tally = new RejectionTally();
    const slot = request.pinnedAgent !== undefined ? ledger.slot(request.pinnedAgent) : undefined;
    if (slot) {
      const r = firstRejection(this.pinnedChain, this.ctx, slot, g);
      if (!r) return { placed: true, slot };
      tally.add(r);
    }
    return { placed: false, reason: tally.describe(), causes: tally.causes() };
  }

  /** placeCounted places the next task of a counted unit; `demand` is its resources packed. It does not reserve. */
  placeCounted(request: PlacementRequest, unit: PlacementUnit, demand: Float64Array): PlaceOutcome {
    const g = request.group;
    const ledger = this.pass.ledger;
    if (ledger.slots.length === 0) return { placed: false, reason: NO_AGENTS_REASON, causes: {} };
    const quota = this.overQuota(g, demand);
    if (quota) return quota;
    if (request.preferredAgent !== undefined) {
      const slot = ledger.slot(request.preferredAgent);
      if (slot && !firstRejection(this.chain, this.ctx, slot, g)) return { placed: true, slot };
    }
    const st = (unit.placement ??= this.level1(unit));
    if (st.exhausted && st.exhausted.releases === ledger.releases) return { placed: false, reason: st.exhausted.reason, causes: st.exhausted.causes };
    const idx = st.candidates ? st.candidates.select(this.pass.rng, this.tieEpsilon) : -1;
    const picked = idx >= 0 ? ledger.slots[idx] : undefined;
    if (picked) return { placed: true, slot: picked };
    return this.reference(g, st);
  }

  /** level1 chooses a unit's cluster and builds its candidate list with the packed checkers and scorer. */
  private level1(unit: PlacementUnit): UnitPlacement {
    const g = unit.group;
    const ledger = this.pass.ledger;
    const demand = groupDemandOf(ledger, g);
    const { checks, key: roomKey } = this.packedChecksKeyed(g, demand);
    const only = checks.length === 1 ? checks[0] : undefined; // most groups: resources alone
    const room = only
      ? (i: number, cap: number): number => Math.max(0, Math.min(cap, only.room(i, cap)))
      : (i: number, cap: number): number => {
          let n = cap;
          for (const c of checks) n = Math.min(n, c.room(i, cap));
          return Math.max(0, n);
        };
    const inputs = { ledger, classes: this.classes, totalVector: this.pass.totalVector, running: this.pass.clustersOfGroup.get(groupKey(g)), room, roomKey, counts: this.clusterCounts };
    const choice = chooseCluster(inputs, g, demand, unit.requests.length);
    this.decisions.push(choice.decision);
    if (choice.candidates.length === 0) return { decision: choice.decision, cluster: choice.cluster };
    const score = this.scorer(g.strategy).pack(ledger, g, demand);
    const candidates = new GroupCandidates(ledger, g.strategy, Int32Array.from(choice.candidates), checks, score);
    return { decision: choice.decision, cluster: choice.cluster, candidates };
  }

  /** reference runs the full chain over every agent, each tallied under its first failing check; the unit is marked exhausted when none fits. */
  private reference(g: DesiredGroup, st: UnitPlacement): PlaceOutcome {
    const ledger = this.pass.ledger;
    const tally = new RejectionTally();
    const feasible: AgentSlot[] = [];
    for (const s of ledger.slots) {
      const r = firstRejection(this.chain, this.ctx, s, g);
      if (r) tally.add(r);
      else if (st.cluster === '' || s.agent.cluster === st.cluster) feasible.push(s);
      else tally.add({ cause: `cluster ${st.cluster} chosen for the group`, wording: 'agents' });
    }
    const best = selectBest(feasible, g, this.scorer(g.strategy), this.pass.rng);
    if (best) return { placed: true, slot: best };
    const note = st.decision.note && st.decision.note.startsWith('no cluster') ? ` (${st.decision.note}; placed in ${st.cluster})` : '';
    st.exhausted = { reason: `${tally.describe()}${note}`, causes: tally.causes(), releases: ledger.releases };
    return { placed: false, reason: st.exhausted.reason, causes: st.exhausted.causes };
  }
}
