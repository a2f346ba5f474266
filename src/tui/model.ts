/**
 * The dashboard's data: everything the views show for one state version. The columns and
 * aggregates come from computeCore (model-core.ts, usually run in the state worker); this module
 * wraps them for the UI: row lists that materialize (and cache) a row object only when it is shown,
 * and filters that scan the columns with per-word lookup tables over the interned strings, cached
 * per query. No React, no terminal.
 */
import type { EventRecord, StateData } from '../state/types.js';
import { computeCore, CRASH_LOOP, type Amounts, type DeclaredAgent, type ModelCore, type OverviewLine, type Totals } from './model-core.js';
import { queryWords as wordsOf } from './search.js';

export { agentStateOf, computeCore, CRASH_LOOP, LIVE_TASK_STATES, taskSortKey } from './model-core.js';
export type { Amounts, ClusterSummary, DeclaredAgent, IdcSummary, ModelCore, OverviewLine, Totals } from './model-core.js';

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
}

/** TaskRow is one task as the views show it (the fields of its state record they use). */
export interface TaskRow {
  task: string;
  plan: string;
  group: string;
  project: string;
  agent: string;
  driver: string;
  state: string;
  power?: string;
  health?: string;
  pid?: number;
  exitCode?: number;
  signal?: string;
  error?: string;
  startedAt?: string;
  resources: Amounts;
  /** restarts counts the restarts of its crash loop (absent: none since it last stayed up). */
  restarts?: number;
  /** crashLoop is set on a task dead again after a restart of its loop: its restart waits for the backoff (STATE shows `crash-loop`). */
  crashLoop?: boolean;
  /** nextRestartAt is when a crash-looping task's next restart is due. */
  nextRestartAt?: string;
}

/** ROW_CACHE bounds how many materialized rows a model keeps (they are reused across frames). */
const ROW_CACHE = 4096;

/**
 * RowList is a read-only list of rows of one model (all of them, or a filtered subset held as
 * indices into the model's columns). Rows are materialized on access and cached by the model, so
 * the same row is the same object from frame to frame.
 */
export class RowList<T> {
  constructor(
    readonly length: number,
    private readonly get: (i: number) => T,
    /** index maps a position in this list to the row's index in the model's columns (absent: identity). */
    readonly index?: Int32Array,
  ) {}

  /** at returns the row at a position (undefined out of range). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.length || !Number.isInteger(i)) return undefined;
    return this.get(this.index ? this.index[i]! : i);
  }

  /** slice materializes the rows in [start, end). */
  slice(start = 0, end = this.length): T[] {
    const out: T[] = [];
    const e = Math.min(end, this.length);
    for (let i = Math.max(0, start); i < e; i++) out.push(this.get(this.index ? this.index[i]! : i));
    return out;
  }

  /** map, find and iteration visit every row (tests, small lists). */
  map<U>(fn: (row: T, i: number) => U): U[] {
    const out: U[] = [];
    for (let i = 0; i < this.length; i++) out.push(fn(this.at(i)!, i));
    return out;
  }

  find(fn: (row: T) => boolean): T | undefined {
    for (let i = 0; i < this.length; i++) {
      const r = this.at(i)!;
      if (fn(r)) return r;
    }
    return undefined;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.length; i++) yield this.at(i)!;
  }
}

/** DashboardModel is everything the views show, for one version of the state. */
export class DashboardModel {
  readonly agents: RowList<AgentRow>;
  readonly tasks: RowList<TaskRow>;
  readonly overview: OverviewLine[];
  /** events, newest first. */
  readonly events: EventRecord[];
  readonly totals: Totals;
  private readonly agentRows = new Map<number, AgentRow>();
  private readonly taskRows = new Map<number, TaskRow>();
  private readonly taskFilters = new Map<string, RowList<TaskRow>>();
  private readonly agentFilters = new Map<string, RowList<AgentRow>>();
  private agentSearch?: string[];
  private lower?: string[];
  private idsLower?: string;
  private strIndex?: Map<string, number>;

  constructor(readonly core: ModelCore) {
    this.agents = new RowList(core.agentCount, (i) => this.agentRow(i));
    this.tasks = new RowList(core.taskCount, (i) => this.taskRow(i));
    this.overview = core.overview;
    this.events = core.events;
    this.totals = core.totals;
  }

  private str(i: number): string | undefined {
    return i === 0 ? undefined : this.core.strs[i];
  }

  private agentRow(i: number): AgentRow {
    let r = this.agentRows.get(i);
    if (r) return r;
    const c = this.core;
    r = {
      name: c.strs[c.aName[i]!]!,
      idc: c.strs[c.aIdc[i]!]!,
      cluster: c.strs[c.aCluster[i]!]!,
      state: c.strs[c.aState[i]!]!,
      draining: c.aDraining[i] === 1,
      capacity: { cpus: c.aCap[3 * i]!, mem: c.aCap[3 * i + 1]!, gpus: c.aCap[3 * i + 2]! },
      used: { cpus: c.aUsed[3 * i]!, mem: c.aUsed[3 * i + 1]!, gpus: c.aUsed[3 * i + 2]! },
      tasks: c.aTasks[i]!,
      attributes: this.str(c.aAttrs[i]!) ?? '',
    };
    const lastSeen = this.str(c.aLastSeen[i]!);
    if (lastSeen !== undefined) r.lastSeen = lastSeen;
    const error = this.str(c.aError[i]!);
    if (error !== undefined) r.error = error;
    if (this.agentRows.size >= ROW_CACHE) this.agentRows.clear();
    this.agentRows.set(i, r);
    return r;
  }

  /** taskId returns a task's id without materializing its row. */
  taskId(i: number): string {
    return this.core.tIds.slice(this.core.tIdOff[i]!, this.core.tIdOff[i + 1]! - 1);
  }

  private taskRow(i: number): TaskRow {
    let r = this.taskRows.get(i);
    if (r) return r;
    const c = this.core;
    r = {
      task: this.taskId(i),
      plan: c.strs[c.tPlan[i]!]!,
      group: c.strs[c.tGroup[i]!]!,
      project: c.strs[c.tProject[i]!]!,
      agent: c.strs[c.tAgent[i]!]!,
      driver: c.strs[c.tDriver[i]!]!,
      state: c.strs[c.tState[i]!]!,
      resources: { cpus: c.tRes[3 * i]!, mem: c.tRes[3 * i + 1]!, gpus: c.tRes[3 * i + 2]! },
    };
    const opt = { power: c.tPower, health: c.tHealth, signal: c.tSignal, error: c.tError, startedAt: c.tStarted } as const;
    for (const k of Object.keys(opt) as (keyof typeof opt)[]) {
      const v = this.str(opt[k][i]!);
      if (v !== undefined) r[k] = v;
    }
    if (!Number.isNaN(c.tPid[i]!)) r.pid = c.tPid[i]!;
    if (!Number.isNaN(c.tExit[i]!)) r.exitCode = c.tExit[i]!;
    const b = c.tBackoff[i];
    if (b) {
      r.restarts = b.restarts;
      if (b.crashLoop) r.crashLoop = true;
      if (b.nextRestartAt !== undefined) r.nextRestartAt = b.nextRestartAt;
    }
    if (this.taskRows.size >= ROW_CACHE) this.taskRows.clear();
    this.taskRows.set(i, r);
    return r;
  }

  /** lowered returns the interned strings lowercased (computed once per model). */
  lowered(): string[] {
    return (this.lower ??= this.core.strs.map((s) => s.toLowerCase()));
  }

  /** indexOfString returns a string's intern index, or -1 when no row holds it. */
  indexOfString(s: string): number {
    if (!this.strIndex) {
      this.strIndex = new Map();
      this.core.strs.forEach((v, i) => i > 0 && this.strIndex!.set(v, i));
    }
    return this.strIndex.get(s) ?? -1;
  }

  /** searchOfAgent is the lowercased text the agents filter matches (`name idc:… cluster:… state:… k=v`). */
  searchOfAgent(i: number): string {
    if (!this.agentSearch) {
      const c = this.core;
      const s: string[] = new Array(c.agentCount);
      for (let j = 0; j < c.agentCount; j++) {
        s[j] = `${c.strs[c.aName[j]!]} idc:${c.strs[c.aIdc[j]!]} cluster:${c.strs[c.aCluster[j]!]} state:${c.strs[c.aState[j]!]} ${this.str(c.aAttrs[j]!) ?? ''}`.toLowerCase();
      }
      this.agentSearch = s;
    }
    return this.agentSearch[i]!;
  }

  /** lowerIds is the task-id string lowercased (same offsets), or undefined if lowercasing changed its length. */
  lowerIds(): string | undefined {
    if (this.idsLower === undefined) this.idsLower = this.core.tIds.toLowerCase();
    return this.idsLower.length === this.core.tIds.length ? this.idsLower : undefined;
  }

  /** cachedTasks / cachedAgents memoize filter results per scope and query. */
  cachedTasks(key: string, make: () => RowList<TaskRow>): RowList<TaskRow> {
    return cached(this.taskFilters, key, make);
  }

  cachedAgents(key: string, make: () => RowList<AgentRow>): RowList<AgentRow> {
    return cached(this.agentFilters, key, make);
  }

  /** subset is a list of this model's tasks or agents at the given column indices. */
  taskSubset(index: Int32Array): RowList<TaskRow> {
    return new RowList(index.length, (i) => this.taskRow(i), index);
  }

  agentSubset(index: Int32Array): RowList<AgentRow> {
    return new RowList(index.length, (i) => this.agentRow(i), index);
  }
}

function cached<T>(map: Map<string, T>, key: string, make: () => T): T {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    if (map.size >= 64) map.delete(map.keys().next().value!);
    map.set(key, v);
  }
  return v;
}

/** modelOf wraps a core (computed here or in the state worker). */
export function modelOf(core: ModelCore): DashboardModel {
  return new DashboardModel(core);
}

/**
 * buildModel computes every row and aggregate the dashboard shows from one state document (and the
 * inventory's agents, so agents never observed still show). Used resources of an agent are the sum
 * of its live tasks' resources.
 */
export function buildModel(data: StateData, declared: readonly DeclaredAgent[] = []): DashboardModel {
  return modelOf(computeCore(data, declared));
}

/** taskStateOf is the state a view shows for a task: `crash-loop` for a crash-looping one (as `factory status`), else its recorded state. */
export function taskStateOf(t: Pick<TaskRow, 'state' | 'crashLoop'>): string {
  return t.crashLoop ? CRASH_LOOP : t.state;
}

/** taskDetailOf says briefly why a task is not running: its error, the signal or the exit code. */
export function taskDetailOf(t: Pick<TaskRow, 'error' | 'state' | 'signal' | 'exitCode'>): string {
  if (t.error) return t.error;
  if (t.state === 'running' || t.state === 'pending') return '';
  if (t.signal) return `killed by ${t.signal}`;
  if (t.exitCode !== undefined) return `exit ${t.exitCode}`;
  return '';
}

/** Scope narrows a view after a drill-in: the agents of an IDC or cluster, the tasks of an agent. */
export interface Scope {
  idc?: string;
  cluster?: string;
  agent?: string;
}

/**
 * filterRows keeps the rows whose search text contains every whitespace-separated word of the
 * query (case-insensitive). It returns the input array itself when there is nothing to filter.
 */
export function filterRows<T extends { search: string }>(rows: T[], query: string, keep?: (row: T) => boolean): T[] {
  const words = wordsOf(query);
  if (words.length === 0 && !keep) return rows;
  return rows.filter((r) => (!keep || keep(r)) && words.every((w) => r.search.includes(w)));
}

/** agentsInScope returns the agents of the scope's IDC / cluster, filtered by the query (the model's list itself when nothing filters). */
export function agentsInScope(model: DashboardModel, scope: Scope, query: string): RowList<AgentRow> {
  const words = wordsOf(query);
  if (!scope.idc && !scope.cluster && words.length === 0) return model.agents;
  return model.cachedAgents(`${scope.idc ?? ''}\u0000${scope.cluster ?? ''}\u0000${words.join(' ')}`, () => {
    const c = model.core;
    const idc = scope.idc ? model.indexOfString(scope.idc) : 0;
    const cluster = scope.cluster ? model.indexOfString(scope.cluster) : 0;
    const out: number[] = [];
    if (idc >= 0 && cluster >= 0) {
      for (let i = 0; i < c.agentCount; i++) {
        if (idc && c.aIdc[i] !== idc) continue;
        if (cluster && c.aCluster[i] !== cluster) continue;
        if (words.length) {
          const s = model.searchOfAgent(i);
          if (!words.every((w) => s.includes(w))) continue;
        }
        out.push(i);
      }
    }
    return model.agentSubset(Int32Array.from(out));
  });
}

/** TASK_FILTER_FIELDS are the task fields a `key:value` filter word can name. */
export const TASK_FILTER_FIELDS = ['task', 'plan', 'group', 'project', 'agent', 'driver', 'state', 'power', 'health'] as const;

type Field = (typeof TASK_FILTER_FIELDS)[number];

function columnOf(c: ModelCore, f: Exclude<Field, 'task'>): Int32Array {
  switch (f) {
    case 'plan': return c.tPlan;
    case 'group': return c.tGroup;
    case 'project': return c.tProject;
    case 'agent': return c.tAgent;
    case 'driver': return c.tDriver;
    case 'state': return c.tState;
    case 'power': return c.tPower;
    case 'health': return c.tHealth;
  }
}

/** taskOfOffset returns the task whose id contains character position pos of the id string. */
function taskOfOffset(off: Uint32Array, n: number, pos: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (off[mid]! <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** idHits marks the tasks whose id (raw or lowercased) contains w, by searching the one id string. */
function idHits(ids: string, off: Uint32Array, n: number, w: string): Uint8Array {
  const hit = new Uint8Array(n);
  let pos = ids.indexOf(w);
  while (pos >= 0) {
    const t = taskOfOffset(off, n, pos);
    hit[t] = 1;
    pos = ids.indexOf(w, off[t + 1]!);
  }
  return hit;
}

/** strHits marks the interned strings s for which test(s) holds (index 0, absent, never does). */
function strHits(strs: string[], test: (s: string) => boolean): Uint8Array {
  const hit = new Uint8Array(strs.length);
  for (let i = 1; i < strs.length; i++) if (test(strs[i]!)) hit[i] = 1;
  return hit;
}

/**
 * tasksInScope returns the tasks of the scope's agent matching the query (the model's list itself
 * when nothing filters). Every (lowercased) word must match: `key:value` looks in that field
 * (lowercased), a plain word in the id, agent, state, driver, project, power, health or (lowercased)
 * error; a crash-looping task's state is also `crash-loop` (`state:crash` finds them). Each word becomes lookup tables over the interned strings (and one search of the id
 * string), so a query costs a pass of array lookups over the columns; results are cached per query.
 */
export function tasksInScope(model: DashboardModel, scope: Scope, query: string): RowList<TaskRow> {
  const words = wordsOf(query);
  if (!scope.agent && words.length === 0) return model.tasks;
  return model.cachedTasks(`${scope.agent ?? ''}\u0000${words.join(' ')}`, () => {
    const c = model.core;
    const n = c.taskCount;
    const agent = scope.agent ? model.indexOfString(scope.agent) : 0;
    if (agent < 0) return model.taskSubset(new Int32Array(0));
    const checks: ((i: number) => boolean)[] = [];
    for (const w of words) {
      const colon = w.indexOf(':');
      const key = colon > 0 ? w.slice(0, colon) : '';
      if ((TASK_FILTER_FIELDS as readonly string[]).includes(key)) {
        const v = w.slice(colon + 1);
        if (key === 'task') {
          const lower = model.lowerIds();
          if (lower !== undefined) {
            const hit = v ? idHits(lower, c.tIdOff, n, v) : undefined;
            checks.push(hit ? (i) => hit[i] === 1 : () => true);
          } else checks.push((i) => model.taskId(i).toLowerCase().includes(v));
        } else {
          const col = columnOf(c, key as Exclude<Field, 'task'>);
          const lower = model.lowered();
          const hit = strHits(lower, (s) => s.includes(v));
          if (key === 'state' && CRASH_LOOP.includes(v)) checks.push((i) => hit[col[i]!] === 1 || c.tLoop[i] === 1);
          else checks.push((i) => hit[col[i]!] === 1);
        }
        continue;
      }
      const raw = strHits(c.strs, (s) => s.includes(w));
      const lower = model.lowered();
      const err = strHits(lower, (s) => s.includes(w));
      const id = idHits(c.tIds, c.tIdOff, n, w);
      const loop = CRASH_LOOP.includes(w);
      checks.push(
        (i) =>
          id[i] === 1 || (loop && c.tLoop[i] === 1) || raw[c.tAgent[i]!] === 1 || raw[c.tState[i]!] === 1 || raw[c.tDriver[i]!] === 1 || raw[c.tProject[i]!] === 1 ||
          raw[c.tPower[i]!] === 1 || raw[c.tHealth[i]!] === 1 || err[c.tError[i]!] === 1,
      );
    }
    const out = new Int32Array(n);
    let k = 0;
    rows: for (let i = 0; i < n; i++) {
      if (agent && c.tAgent[i] !== agent) continue;
      for (const check of checks) if (!check(i)) continue rows;
      out[k++] = i;
    }
    return model.taskSubset(out.slice(0, k));
  });
}

/** eventSearch is the lowercased text the filter matches for an event. */
export function eventSearch(e: EventRecord): string {
  return `${e.kind} ${e.task ?? ''} ${e.agent ?? ''} ${e.message}`.toLowerCase();
}

/** eventsMatching returns the events (newest first) matching the query. */
export function eventsMatching(model: DashboardModel, query: string): EventRecord[] {
  const words = wordsOf(query);
  if (!words.length) return model.events;
  return model.events.filter((e) => {
    const s = eventSearch(e);
    return words.every((w) => s.includes(w));
  });
}
