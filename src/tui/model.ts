/**
 * The dashboard's data: everything the views show, computed once per state change by plain
 * functions (no React, no terminal) so that a frame only slices precomputed rows. With 10k agents
 * and 100k tasks, buildModel is one pass over the tasks plus two sorts (the task order is reused
 * when a new state holds the same tasks, as after a heartbeat); a frame touches only the rows on
 * screen. Task rows are the state's records themselves.
 */
import type { AgentRecord, EventRecord, StateData, TaskRecord } from '../state/types.js';

/** Amounts is the part of a resource vector the dashboard shows. */
export interface Amounts {
  cpus: number;
  mem: number;
  gpus: number;
}

/** AgentRow is one agent as the agents table shows it: capacity, what its live tasks use, health. */
export interface AgentRow {
  name: string;
  idc: string;
  cluster: string;
  /** state is ready | lost | down | draining (a ready agent with a drain marker) | unknown (never observed). */
  state: string;
  draining: boolean;
  capacity: Amounts;
  used: Amounts;
  /** tasks counts the live (running or pending) tasks recorded on the agent. */
  tasks: number;
  /** attributes as `k=v k=v`, sorted by key. */
  attributes: string;
  lastSeen?: string;
  error?: string;
  /** search is the lowercased text the filter matches (`name idc:… cluster:… state:… k=v`). */
  search: string;
}

/**
 * TaskRow is one task as the tasks table shows it: the state's record itself (never copied, so 100k
 * tasks cost no extra memory), with the optional VM power state and health other drivers record.
 */
export type TaskRow = TaskRecord & { power?: string; health?: string };

/** ClusterSummary aggregates one cluster: agents by state, capacity and use of its agents. */
export interface ClusterSummary {
  idc: string;
  cluster: string;
  agents: number;
  byState: Record<string, number>;
  capacity: Amounts;
  used: Amounts;
  /** tasks counts live tasks on the cluster's agents. */
  tasks: number;
}

/** IdcSummary aggregates one IDC over its clusters. */
export interface IdcSummary extends Omit<ClusterSummary, 'cluster'> {
  clusters: ClusterSummary[];
}

/** OverviewLine is one line of the overview tree: an IDC, then its clusters. */
export type OverviewLine = { kind: 'idc'; idc: string; summary: IdcSummary; search: string } | { kind: 'cluster'; idc: string; cluster: string; summary: ClusterSummary; search: string };

/** DashboardModel is everything the views show, for one version of the state. */
export interface DashboardModel {
  agents: AgentRow[];
  tasks: TaskRow[];
  overview: OverviewLine[];
  /** events, newest first. */
  events: EventRecord[];
  totals: {
    agents: number;
    agentsByState: Record<string, number>;
    tasks: number;
    tasksByState: Record<string, number>;
    capacity: Amounts;
    used: Amounts;
  };
}

/** DeclaredAgent is an inventory agent the state may not know yet (shown as `unknown`). */
export interface DeclaredAgent {
  name: string;
  idc: string;
  cluster: string;
}

/** LIVE_TASK_STATES are the task states that hold resources on their agent. */
export const LIVE_TASK_STATES: ReadonlySet<string> = new Set(['running', 'pending']);

function zero(): Amounts {
  return { cpus: 0, mem: 0, gpus: 0 };
}

function add(into: Amounts, r: Amounts): void {
  into.cpus += r.cpus;
  into.mem += r.mem;
  into.gpus += r.gpus;
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** agentStateOf is the state the dashboard shows for an agent record: a drain marker shows on a ready agent. */
export function agentStateOf(rec: AgentRecord): string {
  return rec.draining && rec.state === 'ready' ? 'draining' : rec.state;
}

/** taskDetailOf says briefly why a task is not running: its error, the signal or the exit code. */
export function taskDetailOf(t: TaskRecord): string {
  if (t.error) return t.error;
  if (t.state === 'running' || t.state === 'pending') return '';
  if (t.signal) return `killed by ${t.signal}`;
  if (t.exitCode !== undefined) return `exit ${t.exitCode}`;
  return '';
}

/** taskSortKey orders `plan/group/index` ids with the index numerically (like compareTaskIds), as one string compare. */
export function taskSortKey(task: string): string {
  const i = task.lastIndexOf('/');
  const n = Number(task.slice(i + 1));
  return Number.isInteger(n) && n >= 0 ? `${task.slice(0, i)}\u0000${String(n).padStart(10, '0')}` : `${task.slice(0, i)}\u0000${task.slice(i + 1)}`;
}

/** sameTaskIds tells whether the state holds exactly the previous model's tasks (then their order is reused). */
function sameTaskIds(prev: DashboardModel | undefined, data: StateData): boolean {
  if (!prev) return false;
  let n = 0;
  for (const _ in data.tasks) n++;
  if (n !== prev.tasks.length) return false;
  for (const t of prev.tasks) if (!(t.task in data.tasks)) return false;
  return true;
}

function byKey<T>(rows: T[], key: (r: T) => string): T[] {
  const keyed = rows.map((r) => ({ k: key(r), r }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.r);
}

/**
 * buildModel computes every row and aggregate the dashboard shows from one state document (and the
 * inventory's agents, so agents never observed still show). Used resources of an agent are the sum
 * of its live tasks' resources.
 */
export function buildModel(data: StateData, declared: DeclaredAgent[] = [], prev?: DashboardModel): DashboardModel {
  const used = new Map<string, Amounts>();
  const liveCount = new Map<string, number>();
  const tasksByState: Record<string, number> = {};
  const taskRows: TaskRow[] = Object.values(data.tasks);
  for (const t of taskRows) {
    bump(tasksByState, t.state);
    if (!LIVE_TASK_STATES.has(t.state)) continue;
    let u = used.get(t.agent);
    if (!u) used.set(t.agent, (u = zero()));
    add(u, { cpus: t.resources?.cpus ?? 0, mem: t.resources?.mem ?? 0, gpus: t.resources?.gpus ?? 0 });
    liveCount.set(t.agent, (liveCount.get(t.agent) ?? 0) + 1);
  }

  const agentRows: AgentRow[] = [];
  const seen = new Set<string>();
  for (const rec of Object.values(data.agents)) {
    seen.add(rec.name);
    const state = agentStateOf(rec);
    const attributes = Object.keys(rec.attributes ?? {})
      .sort()
      .map((k) => `${k}=${rec.attributes[k]}`)
      .join(' ');
    agentRows.push({
      name: rec.name,
      idc: rec.idc,
      cluster: rec.cluster,
      state,
      draining: Boolean(rec.draining),
      capacity: { cpus: rec.resources?.cpus ?? 0, mem: rec.resources?.mem ?? 0, gpus: rec.resources?.gpus ?? 0 },
      used: used.get(rec.name) ?? zero(),
      tasks: liveCount.get(rec.name) ?? 0,
      attributes,
      lastSeen: rec.lastSeen,
      error: rec.error,
      search: `${rec.name} idc:${rec.idc} cluster:${rec.cluster} state:${state} ${attributes}`.toLowerCase(),
    });
  }
  for (const d of declared) {
    if (seen.has(d.name)) continue;
    agentRows.push({
      name: d.name, idc: d.idc, cluster: d.cluster, state: 'unknown', draining: false, capacity: zero(),
      used: used.get(d.name) ?? zero(), tasks: liveCount.get(d.name) ?? 0, attributes: '',
      search: `${d.name} idc:${d.idc} cluster:${d.cluster} state:unknown`.toLowerCase(),
    });
  }
  const agents = byKey(agentRows, (a) => `${a.idc}\u0000${a.cluster}\u0000${a.name}`);
  const tasks = sameTaskIds(prev, data) ? prev!.tasks.map((t) => data.tasks[t.task]!) : byKey(taskRows, (t) => taskSortKey(t.task));

  const overview: OverviewLine[] = [];
  const agentsByState: Record<string, number> = {};
  const capacity = zero();
  const usedTotal = zero();
  let idc: IdcSummary | undefined;
  let cluster: ClusterSummary | undefined;
  for (const a of agents) {
    if (!idc || idc.idc !== a.idc) {
      idc = { idc: a.idc, clusters: [], agents: 0, byState: {}, capacity: zero(), used: zero(), tasks: 0 };
      overview.push({ kind: 'idc', idc: a.idc, summary: idc, search: `${a.idc}`.toLowerCase() });
      cluster = undefined;
    }
    if (!cluster || cluster.cluster !== a.cluster) {
      cluster = { idc: a.idc, cluster: a.cluster, agents: 0, byState: {}, capacity: zero(), used: zero(), tasks: 0 };
      idc.clusters.push(cluster);
      overview.push({ kind: 'cluster', idc: a.idc, cluster: a.cluster, summary: cluster, search: `${a.idc}/${a.cluster}`.toLowerCase() });
    }
    for (const s of [cluster, idc]) {
      s.agents++;
      bump(s.byState, a.state);
      add(s.capacity, a.capacity);
      add(s.used, a.used);
      s.tasks += a.tasks;
    }
    bump(agentsByState, a.state);
    add(capacity, a.capacity);
    add(usedTotal, a.used);
  }

  const events = data.events.slice().reverse();
  return {
    agents,
    tasks,
    overview,
    events,
    totals: { agents: agents.length, agentsByState, tasks: tasks.length, tasksByState, capacity, used: usedTotal },
  };
}

/** Scope narrows a view after a drill-in: the agents of an IDC or cluster, the tasks of an agent. */
export interface Scope {
  idc?: string;
  cluster?: string;
  agent?: string;
}

/**
 * filterRows keeps the rows whose search text contains every whitespace-separated word of the
 * query (case-insensitive; `state:failed`, `agent:h1`, `driver:libvirt` work because the search
 * text carries `key:value`). It returns the input array itself when there is nothing to filter.
 */
export function filterRows<T extends { search: string }>(rows: T[], query: string, keep?: (row: T) => boolean): T[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0 && !keep) return rows;
  const out: T[] = [];
  for (const r of rows) {
    if (keep && !keep(r)) continue;
    let ok = true;
    for (const w of words) {
      if (!r.search.includes(w)) {
        ok = false;
        break;
      }
    }
    if (ok) out.push(r);
  }
  return out;
}

/** agentsInScope returns the agents of the scope's IDC / cluster, filtered by the query. */
export function agentsInScope(model: DashboardModel, scope: Scope, query: string): AgentRow[] {
  if (!scope.idc && !scope.cluster) return filterRows(model.agents, query);
  return filterRows(model.agents, query, (a) => (!scope.idc || a.idc === scope.idc) && (!scope.cluster || a.cluster === scope.cluster));
}

/** TASK_FILTER_FIELDS are the task fields a `key:value` filter word can name. */
export const TASK_FILTER_FIELDS = ['task', 'plan', 'group', 'project', 'agent', 'driver', 'state', 'power', 'health'] as const;

function fieldOf(t: TaskRow, key: string): string | undefined {
  switch (key) {
    case 'task': return t.task;
    case 'plan': return t.plan;
    case 'group': return t.group;
    case 'project': return t.project;
    case 'agent': return t.agent;
    case 'driver': return t.driver;
    case 'state': return t.state;
    case 'power': return t.power;
    case 'health': return t.health;
    default: return undefined;
  }
}

/**
 * taskMatches tells whether a task matches every (lowercased) filter word: `key:value` looks in that
 * field, a plain word in the id, agent, state, driver, project, power, health and error. It
 * allocates nothing for ids and states (names are lowercase by validation), so filtering 100k tasks
 * per key press stays cheap.
 */
export function taskMatches(t: TaskRow, words: string[]): boolean {
  for (const w of words) {
    const colon = w.indexOf(':');
    if (colon > 0) {
      const key = w.slice(0, colon);
      if ((TASK_FILTER_FIELDS as readonly string[]).includes(key)) {
        const v = fieldOf(t, key);
        if (v === undefined || !v.toLowerCase().includes(w.slice(colon + 1))) return false;
        continue;
      }
    }
    if (
      !t.task.includes(w) && !t.agent.includes(w) && !t.state.includes(w) && !t.driver.includes(w) && !t.project.includes(w) &&
      !(t.power?.includes(w) ?? false) && !(t.health?.includes(w) ?? false) && !(t.error?.toLowerCase().includes(w) ?? false)
    ) {
      return false;
    }
  }
  return true;
}

/** tasksInScope returns the tasks of the scope's agent matching the query (the model's array itself when nothing filters). */
export function tasksInScope(model: DashboardModel, scope: Scope, query: string): TaskRow[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!scope.agent && words.length === 0) return model.tasks;
  const out: TaskRow[] = [];
  for (const t of model.tasks) {
    if (scope.agent && t.agent !== scope.agent) continue;
    if (taskMatches(t, words)) out.push(t);
  }
  return out;
}

/** eventSearch is the lowercased text the filter matches for an event. */
export function eventSearch(e: EventRecord): string {
  return `${e.kind} ${e.task ?? ''} ${e.agent ?? ''} ${e.message}`.toLowerCase();
}

/** eventsMatching returns the events (newest first) matching the query. */
export function eventsMatching(model: DashboardModel, query: string): EventRecord[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return model.events;
  return model.events.filter((e) => {
    const s = eventSearch(e);
    return words.every((w) => s.includes(w));
  });
}
