/**
 * The reconciler: desired groups versus actual tasks, for the plans being applied. It decides what to
 * keep and stop outright, and turns everything that needs an agent into PlacementRequests for the
 * placement pipeline. It never chooses agents itself (except that everyAgent tasks are pinned).
 */
import { AGENT_MATCH_CHECKS, firstRejection } from './feasibility.js';
import type { AgentSlot, ClusterLedger } from './ledger.js';
import { groupKey } from './ledger.js';
import type { ActualTask, DesiredGroup, PlacementReason, SchedulerInput, Stop, StopReason, TaskState } from './types.js';

/** PlacementRequest is one task the placement pipeline must find an agent for. */
export interface PlacementRequest {
  /** task is the task id; undefined for a new everyAgent task, which gets the lowest free index once placed. */
  task?: string;
  group: DesiredGroup;
  reason: PlacementReason;
  /** preferredAgent is tried first (same agent for updates and restarts). */
  preferredAgent?: string;
  /** pinnedAgent is the only agent allowed (everyAgent tasks). */
  pinnedAgent?: string;
  /** replaces is the existing task this one replaces; it is stopped (replaceStop) only once the new one is placed. */
  replaces?: ActualTask;
  replaceStop?: StopReason;
  /** holdsResources: the replaced task's resources stay reserved on its agent until this request's turn. */
  holdsResources: boolean;
  /** reportIfUnplaced is false for new everyAgent tasks (an agent where one cannot fit is simply not a target). */
  reportIfUnplaced: boolean;
}

/** Reconciliation is the reconciler's output: decided keeps and stops, and what still needs placing. */
export interface Reconciliation {
  keep: ActualTask[];
  stop: Stop[];
  requests: PlacementRequest[];
  /** others are tasks of plans not being applied: untouched, but their resources count as used. */
  others: ActualTask[];
  /** usedIndices holds, per everyAgent group key, the indices of its existing tasks (new ones take the lowest others). */
  usedIndices: Map<string, Set<number>>;
}

const LIVE_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['running', 'pending']);

/** isLive says whether a task state means the task holds its agent's resources and should be kept. */
export function isLive(state: TaskState): boolean {
  return LIVE_STATES.has(state);
}

/** taskId builds the `plan/group/index` id of a task. */
export function taskId(group: { plan: string; group: string }, index: number): string {
  return `${group.plan}/${group.group}/${index}`;
}

/** parseTaskIndex returns the index of a task id of the given group, or undefined if the id is not `plan/group/<n>`. */
export function parseTaskIndex(task: string, group: { plan: string; group: string }): number | undefined {
  const prefix = `${group.plan}/${group.group}/`;
  if (!task.startsWith(prefix)) return undefined;
  const rest = task.slice(prefix.length);
  return /^(0|[1-9]\d{0,8})$/.test(rest) ? Number(rest) : undefined;
}

/** reconcile diffs desired groups against actual tasks of the plans being applied. */
export function reconcile(input: SchedulerInput, ledger: ClusterLedger): Reconciliation {
  const applied = new Set([...input.plans, ...input.groups.map((g) => g.plan)]);
  const groups = new Map<string, DesiredGroup>();
  for (const g of input.groups) if (!groups.has(groupKey(g))) groups.set(groupKey(g), g);

  const out: Reconciliation = { keep: [], stop: [], requests: [], others: [], usedIndices: new Map() };
  // byGroup: group key → index → existing tasks with that id (normally one).
  const byGroup = new Map<string, Map<number, ActualTask[]>>();
  for (const t of input.actual) {
    if (!applied.has(t.plan)) {
      out.others.push(t);
      continue;
    }
    const g = groups.get(groupKey(t));
    const index = g ? parseTaskIndex(t.task, g) : undefined;
    if (!g || index === undefined) {
      out.stop.push({ task: t, reason: 'removed' });
    } else if (!g.everyAgent && index >= g.count) {
      out.stop.push({ task: t, reason: 'scaled-down' });
    } else {
      let byIndex = byGroup.get(groupKey(g));
      if (!byIndex) byGroup.set(groupKey(g), (byIndex = new Map()));
      const same = byIndex.get(index);
      if (same) same.push(t);
      else byIndex.set(index, [t]);
    }
  }

  const sortedGroups = [...groups.values()].sort((a, b) => cmp(groupKey(a), groupKey(b)));
  for (const g of sortedGroups) {
    const byIndex = byGroup.get(groupKey(g)) ?? new Map<number, ActualTask[]>();
    if (g.everyAgent) reconcileEveryAgent(g, byIndex, ledger, out);
    else reconcileCounted(g, byIndex, ledger, out);
  }
  return out;
}

function reconcileCounted(g: DesiredGroup, byIndex: Map<number, ActualTask[]>, ledger: ClusterLedger, out: Reconciliation): void {
  for (let index = 0; index < g.count; index++) {
    const existing = byIndex.get(index);
    if (!existing) {
      out.requests.push({ task: taskId(g, index), group: g, reason: 'new', holdsResources: false, reportIfUnplaced: true });
      continue;
    }
    const [primary, ...extras] = rankDuplicates(existing, ledger);
    for (const extra of extras) out.stop.push({ task: extra, reason: 'scaled-down' });
    if (primary) reconcileExisting(g, primary, ledger, out);
  }
}

function reconcileEveryAgent(g: DesiredGroup, byIndex: Map<number, ActualTask[]>, ledger: ClusterLedger, out: Reconciliation): void {
  out.usedIndices.set(groupKey(g), new Set(byIndex.keys()));
  // One task per agent: among tasks of the group on the same agent, the lowest index stays.
  const onAgent = new Map<string, ActualTask>();
  for (const index of [...byIndex.keys()].sort((a, b) => a - b)) {
    const [primary, ...extras] = rankDuplicates(byIndex.get(index) ?? [], ledger);
    for (const extra of extras) out.stop.push({ task: extra, reason: 'scaled-down' });
    if (!primary) continue;
    if (onAgent.has(primary.agent)) out.stop.push({ task: primary, reason: 'scaled-down' });
    else onAgent.set(primary.agent, primary);
  }
  for (const t of onAgent.values()) reconcileExisting(g, t, ledger, out);
  for (const slot of ledger.slots) {
    if (slot.agent.state !== 'ready' || onAgent.has(slot.agent.name)) continue;
    if (!matchesAgent(ledger, slot, g)) continue;
    out.requests.push({ group: g, reason: 'new', pinnedAgent: slot.agent.name, holdsResources: false, reportIfUnplaced: false });
  }
}

/** matchesAgent says whether an agent is one of an everyAgent group's (driver, placement, constraints; these checks read no project policy). */
function matchesAgent(ledger: ClusterLedger, slot: AgentSlot, g: DesiredGroup): boolean {
  return firstRejection(AGENT_MATCH_CHECKS, { ledger, projects: {} }, slot, g) === undefined;
}

/** wantsRestart applies the group's restart policy to a dead task: `on-failure` leaves a clean exit alone. */
export function wantsRestart(g: DesiredGroup, t: ActualTask): boolean {
  const policy = g.restart ?? 'always';
  if (policy === 'never') return false;
  if (policy === 'on-failure') return t.state !== 'finished';
  return true;
}

/** reconcileExisting decides keep / update / restart / reschedule / stop for the one task that holds an id. */
function reconcileExisting(g: DesiredGroup, t: ActualTask, ledger: ClusterLedger, out: Reconciliation): void {
  const slot = ledger.slot(t.agent);
  const agentState = slot?.agent.state;
  const usable = agentState === 'ready' || agentState === 'draining';
  const draining = agentState === 'draining';
  const base = { task: t.task, group: g, replaces: t, reportIfUnplaced: true };

  if (!slot || !usable) {
    // Lost, down or gone agent: the task moves. An everyAgent task simply has no agent any more.
    if (g.everyAgent) out.stop.push({ task: t, reason: 'scaled-down' });
    else out.requests.push({ ...base, reason: 'reschedule', replaceStop: 'reschedule', holdsResources: false });
    return;
  }
  if (g.everyAgent && !matchesAgent(ledger, slot, g)) {
    out.stop.push({ task: t, reason: 'scaled-down' });
    return;
  }
  if (t.specHash !== g.specHash) {
    if (g.everyAgent && draining) out.keep.push(t); // nothing new on a draining agent: the old version runs on
    else if (draining) out.requests.push({ ...base, reason: 'update', replaceStop: 'update', holdsResources: true });
    else
      out.requests.push({
        ...base,
        reason: 'update',
        replaceStop: 'update',
        holdsResources: true,
        preferredAgent: t.agent,
        ...(g.everyAgent ? { pinnedAgent: t.agent } : {}),
      });
    return;
  }
  // a dead task whose restart backoff has not run out waits (kept, its resources held where it was)
  if (isLive(t.state) || !wantsRestart(g, t) || t.restartHeld) {
    out.keep.push(t);
    return;
  }
  // A dead task: restart in place when its agent is ready, else move it.
  if (!draining) {
    out.requests.push({
      ...base,
      reason: 'restart',
      replaceStop: 'reschedule',
      holdsResources: true,
      preferredAgent: t.agent,
      ...(g.everyAgent ? { pinnedAgent: t.agent } : {}),
    });
  } else if (g.everyAgent) {
    out.stop.push({ task: t, reason: 'scaled-down' });
  } else {
    out.requests.push({ ...base, reason: 'reschedule', replaceStop: 'reschedule', holdsResources: false });
  }
}

/** rankDuplicates orders tasks sharing one id: live on a usable agent first, then usable agent, then live; ties by agent name. */
function rankDuplicates(tasks: ActualTask[], ledger: ClusterLedger): ActualTask[] {
  const rank = (t: ActualTask): number => {
    const state = ledger.slot(t.agent)?.agent.state;
    const usable = state === 'ready' || state === 'draining';
    return (usable ? 0 : 2) + (isLive(t.state) ? 0 : 1);
  };
  return [...tasks].sort((a, b) => rank(a) - rank(b) || cmp(a.agent, b.agent));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
