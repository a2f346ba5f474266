/**
 * The dashboard's compact model: one state document turned into columns (typed arrays of interned
 * string indices and numbers) in display order, plus the aggregates the overview and header show.
 * computeCore is pure and imports nothing at run time but the job views (src/jobs/view.ts) and
 * the crash-loop view (src/control/crash-loop.ts), so it runs in the state worker (which reads
 * and parses the file off the UI thread and hands the result over; typed arrays are transferred,
 * not copied) as well as in the UI thread for in-memory states (tests). With 10k agents and 100k
 * tasks a core is ~12 MB, against ~90 MB of heap for the parsed document; no per-row objects are
 * kept, and the UI materializes only the rows on screen.
 */
import { backoffView, type BackoffView } from '../control/crash-loop.js';
import type { AgentRecord, EventRecord, StateData, TaskRecord } from '../state/types.js';
import { DeploymentTables, type DeploymentTableRecords, type DeploymentView } from './deployments-model.js';
import { JOB_TABLES, JobTables, type JobsData, type JobTableRecords } from './jobs-model.js';

/** Amounts is the part of a resource vector the dashboard shows. */
export interface Amounts {
  cpus: number;
  mem: number;
  gpus: number;
}

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

/** Totals are the header's counts. */
export interface Totals {
  agents: number;
  agentsByState: Record<string, number>;
  tasks: number;
  tasksByState: Record<string, number>;
  capacity: Amounts;
  used: Amounts;
}

/** DeclaredAgent is an inventory agent the state may not know yet (shown as `unknown`). */
export interface DeclaredAgent {
  name: string;
  idc: string;
  cluster: string;
}

/**
 * ModelCore is one state version as columns. String fields are indices into `strs` (0 = absent);
 * amounts are `[cpus, mem, gpus]` triples. Agents are sorted by IDC, cluster, name; tasks by id with
 * numeric indices. Task ids are one `\n`-joined string with offsets (one string to hand over and to
 * search instead of 100k).
 */
export interface ModelCore {
  strs: string[];
  agentCount: number;
  aName: Int32Array;
  aIdc: Int32Array;
  aCluster: Int32Array;
  aState: Int32Array;
  aAttrs: Int32Array;
  aError: Int32Array;
  aLastSeen: Int32Array;
  aDraining: Uint8Array;
  aTasks: Int32Array;
  aCap: Float64Array;
  aUsed: Float64Array;
  taskCount: number;
  tIds: string;
  tIdOff: Uint32Array;
  tPlan: Int32Array;
  tGroup: Int32Array;
  tProject: Int32Array;
  tAgent: Int32Array;
  tDriver: Int32Array;
  tState: Int32Array;
  tPower: Int32Array;
  tHealth: Int32Array;
  tSignal: Int32Array;
  tError: Int32Array;
  tStarted: Int32Array;
  /** tPid and tExit are NaN when absent. */
  tPid: Float64Array;
  tExit: Float64Array;
  tRes: Float64Array;
  /** tLoop is 1 for a crash-looping task (dead again after a restart of its loop: it waits for its backoff). */
  tLoop: Uint8Array;
  /**
   * tBackoff is the restart backoff as `status` shows it (restarts, crash loop, next restart) of the
   * few tasks with restarts in their loop, by task row: sparse, most tasks have none.
   */
  tBackoff: Record<number, BackoffView>;
  overview: OverviewLine[];
  /** events, newest first. */
  events: EventRecord[];
  totals: Totals;
  /** jobs are the scheduled jobs and their kept runs (plain objects: cloned, not transferred). */
  jobs: JobsData;
  /** deployments are the state's deployments, newest first (plain objects: cloned, not transferred). */
  deployments: readonly DeploymentView[];
}

/** CRASH_LOOP is the state shown for a crash-looping task, as `factory status` shows it (its recorded state stays in tState). */
export const CRASH_LOOP = 'crash-loop';

/** LIVE_TASK_STATES are the task states that hold resources on their agent. */
export const LIVE_TASK_STATES: ReadonlySet<string> = new Set(['running', 'pending']);

/** agentStateOf is the state the dashboard shows for an agent record: a drain marker shows on a ready agent. */
export function agentStateOf(rec: AgentRecord): string {
  return rec.draining && rec.state === 'ready' ? 'draining' : rec.state;
}

/** taskSortKey orders `plan/group/index` ids with the index numerically (like compareTaskIds), as one string compare. */
export function taskSortKey(task: string): string {
  const i = task.lastIndexOf('/');
  const n = Number(task.slice(i + 1));
  return Number.isInteger(n) && n >= 0 ? `${task.slice(0, i)}\u0000${String(n).padStart(10, '0')}` : `${task.slice(0, i)}\u0000${task.slice(i + 1)}`;
}

function zero(): Amounts {
  return { cpus: 0, mem: 0, gpus: 0 };
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

/** coreTransferList lists a core's typed arrays' buffers (to hand the core to another thread without copying them). */
export function coreTransferList(c: ModelCore): ArrayBuffer[] {
  return [c.aName, c.aIdc, c.aCluster, c.aState, c.aAttrs, c.aError, c.aLastSeen, c.aDraining, c.aTasks, c.aCap, c.aUsed, c.tIdOff, c.tPlan, c.tGroup, c.tProject, c.tAgent, c.tDriver, c.tState, c.tPower, c.tHealth, c.tSignal, c.tError, c.tStarted, c.tPid, c.tExit, c.tRes, c.tLoop].map(
    (a) => a.buffer as ArrayBuffer,
  );
}

/**
 * CoreBuilder builds a ModelCore from records fed one at a time (`agents` and `tasks` map members, by
 * their key: a repeated key replaces the earlier record, as JSON.parse does), so a reader can parse
 * a state document record by record and never hold the whole document.
 */
export class CoreBuilder {
  private readonly strs: string[] = [''];
  private readonly ids = new Map<string, number>();
  private readonly agentByKey = new Map<string, number>();
  private readonly agents: { key: string; name: string; idc: string; cluster: string; state: string; attrs: number; error: number; lastSeen: number; draining: number; cpus: number; mem: number; gpus: number }[] = [];
  private readonly taskByKey = new Map<string, number>();
  private readonly tSort: string[] = [];
  private readonly tId: string[] = [];
  /** tInt holds per task 11 interned fields, tNum pid, exit, cpus, mem, gpus (typed, grown by doubling). */
  private tInt: Int32Array[] = Array.from({ length: 11 }, () => new Int32Array(1024));
  /** backoffs are the backoff views of the tasks with restarts in their loop, by builder row (few). */
  private readonly backoffs = new Map<number, BackoffView>();
  private tNum: Float64Array[] = Array.from({ length: 5 }, () => new Float64Array(1024));
  /** jobTables collects the members of the `jobs`, `cursors` and `runs` tables (addJobRecord). */
  readonly jobTables = new JobTables();
  /** deploymentTables collects the members of the `deployments` table. */
  readonly deploymentTables = new DeploymentTables();

  intern(s: string | undefined | null): number {
    if (s === undefined || s === null) return 0;
    const str = typeof s === 'string' ? s : String(s);
    let i = this.ids.get(str);
    if (i === undefined) {
      i = this.strs.length;
      this.strs.push(str);
      this.ids.set(str, i);
    }
    return i;
  }

  /** addAgent records one member of the state's `agents` map. */
  addAgent(key: string, rec: AgentRecord): void {
    const attrs = rec.attributes ?? {};
    const a = {
      key: `${rec.idc}\u0000${rec.cluster}\u0000${rec.name}`,
      name: rec.name,
      idc: rec.idc,
      cluster: rec.cluster,
      state: agentStateOf(rec),
      attrs: this.intern(
        Object.keys(attrs)
          .sort()
          .map((k) => `${k}=${attrs[k]}`)
          .join(' '),
      ),
      error: this.intern(rec.error),
      lastSeen: this.intern(rec.lastSeen),
      draining: rec.draining ? 1 : 0,
      cpus: num(rec.resources?.cpus),
      mem: num(rec.resources?.mem),
      gpus: num(rec.resources?.gpus),
    };
    const at = this.agentByKey.get(key);
    if (at === undefined) {
      this.agentByKey.set(key, this.agents.length);
      this.agents.push(a);
    } else this.agents[at] = a;
  }

  /** addTask records one member of the state's `tasks` map. */
  addTask(key: string, rec: TaskRecord): void {
    const t = rec as TaskRecord & { power?: string; health?: string };
    let row = this.taskByKey.get(key);
    if (row === undefined) {
      row = this.tId.length;
      this.taskByKey.set(key, row);
      if (row >= this.tInt[0]!.length) {
        const cap = 2 * this.tInt[0]!.length;
        this.tInt = this.tInt.map((a) => {
          const b = new Int32Array(cap);
          b.set(a);
          return b;
        });
        this.tNum = this.tNum.map((a) => {
          const b = new Float64Array(cap);
          b.set(a);
          return b;
        });
      }
    }
    this.tSort[row] = taskSortKey(t.task);
    this.tId[row] = t.task;
    const ints = this.tInt;
    ints[0]![row] = this.intern(t.plan);
    ints[1]![row] = this.intern(t.group);
    ints[2]![row] = this.intern(t.project);
    ints[3]![row] = this.intern(t.agent);
    ints[4]![row] = this.intern(t.driver);
    ints[5]![row] = this.intern(t.state);
    ints[6]![row] = this.intern(t.power);
    ints[7]![row] = this.intern(t.health);
    ints[8]![row] = this.intern(t.signal);
    ints[9]![row] = this.intern(t.error);
    ints[10]![row] = this.intern(t.startedAt);
    // the crash loop as `status` shows it (crash-loop.ts); most tasks have none
    const b = t.backoff ? backoffView(t) : undefined;
    if (b?.restarts) this.backoffs.set(row, b);
    else this.backoffs.delete(row);
    const nums = this.tNum;
    nums[0]![row] = typeof t.pid === 'number' ? t.pid : NaN;
    nums[1]![row] = typeof t.exitCode === 'number' ? t.exitCode : NaN;
    nums[2]![row] = num(t.resources?.cpus);
    nums[3]![row] = num(t.resources?.mem);
    nums[4]![row] = num(t.resources?.gpus);
  }

  /** finish sorts, aggregates and packs everything into a ModelCore (with the inventory's never-observed agents as `unknown`). */
  finish(events: EventRecord[], declared: readonly DeclaredAgent[] = []): ModelCore {
    const strs = this.strs;
    const intern = (s: string | undefined) => this.intern(s);
    // agents: records then declared-only ones, sorted by idc, cluster, name
    const agents = this.agents;
    const seen = new Set<string>(agents.map((a) => a.name));
    for (const d of declared) {
      if (seen.has(d.name)) continue;
      seen.add(d.name);
      agents.push({ key: `${d.idc}\u0000${d.cluster}\u0000${d.name}`, name: d.name, idc: d.idc, cluster: d.cluster, state: 'unknown', attrs: intern(''), error: 0, lastSeen: 0, draining: 0, cpus: 0, mem: 0, gpus: 0 });
    }
    agents.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const na = agents.length;
    const rowOfName = new Map<number, number>();
    const aName = new Int32Array(na);
    const aIdc = new Int32Array(na);
    const aCluster = new Int32Array(na);
    const aState = new Int32Array(na);
    const aAttrs = new Int32Array(na);
    const aError = new Int32Array(na);
    const aLastSeen = new Int32Array(na);
    const aDraining = new Uint8Array(na);
    const aTasks = new Int32Array(na);
    const aCap = new Float64Array(3 * na);
    const aUsed = new Float64Array(3 * na);
    for (let i = 0; i < na; i++) {
      const a = agents[i]!;
      aName[i] = intern(a.name);
      if (!rowOfName.has(aName[i]!)) rowOfName.set(aName[i]!, i);
      aIdc[i] = intern(a.idc);
      aCluster[i] = intern(a.cluster);
      aState[i] = intern(a.state);
      aAttrs[i] = a.attrs;
      aError[i] = a.error;
      aLastSeen[i] = a.lastSeen;
      aDraining[i] = a.draining;
      aCap[3 * i] = a.cpus;
      aCap[3 * i + 1] = a.mem;
      aCap[3 * i + 2] = a.gpus;
    }

    // tasks, sorted by id (numeric indices)
    const nt = this.tId.length;
    const order = new Int32Array(nt);
    for (let i = 0; i < nt; i++) order[i] = i;
    const sortKeys = this.tSort;
    order.sort((x, y) => {
      const a = sortKeys[x]!;
      const b = sortKeys[y]!;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    const col = (c: number) => {
      const src = this.tInt[c]!;
      const out = new Int32Array(nt);
      for (let i = 0; i < nt; i++) out[i] = src[order[i]!]!;
      return out;
    };
    const fcol = (c: number) => {
      const src = this.tNum[c]!;
      const out = new Float64Array(nt);
      for (let i = 0; i < nt; i++) out[i] = src[order[i]!]!;
      return out;
    };
    const [tPlan, tGroup, tProject, tAgent, tDriver, tState, tPower, tHealth, tSignal, tError, tStarted] = Array.from({ length: 11 }, (_, c) => col(c)) as [
      Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array,
    ];
    const tLoop = new Uint8Array(nt);
    const tBackoff: Record<number, BackoffView> = {};
    if (this.backoffs.size) {
      const rank = new Int32Array(nt);
      for (let i = 0; i < nt; i++) rank[order[i]!] = i;
      for (const [row, b] of this.backoffs) {
        const i = rank[row]!;
        tBackoff[i] = b;
        if (b.crashLoop) tLoop[i] = 1;
      }
    }
    const tPid = fcol(0);
    const tExit = fcol(1);
    const tRes = new Float64Array(3 * nt);
    for (let c = 0; c < 3; c++) {
      const src = this.tNum[2 + c]!;
      for (let i = 0; i < nt; i++) tRes[3 * i + c] = src[order[i]!]!;
    }
    const tIdOff = new Uint32Array(nt + 1);
    const idParts: string[] = new Array(nt);
    let off = 0;
    for (let i = 0; i < nt; i++) {
      const id = this.tId[order[i]!]!;
      idParts[i] = id;
      tIdOff[i] = off;
      off += id.length + 1;
    }
    tIdOff[nt] = off;
    const tIds = idParts.join('\n') + (nt ? '\n' : '');

    const tasksByState: Record<string, number> = {};
    const live = new Uint8Array(strs.length);
    for (let s = 1; s < strs.length; s++) if (LIVE_TASK_STATES.has(strs[s]!)) live[s] = 1;
    for (let i = 0; i < nt; i++) {
      // a crash-looping task counts as `crash-loop`, the state `status` shows for it
      bump(tasksByState, tLoop[i] ? CRASH_LOOP : strs[tState[i]!]!);
      if (!live[tState[i]!]) continue;
      const r = rowOfName.get(tAgent[i]!);
      if (r === undefined) continue;
      aUsed[3 * r] = aUsed[3 * r]! + tRes[3 * i]!;
      aUsed[3 * r + 1] = aUsed[3 * r + 1]! + tRes[3 * i + 1]!;
      aUsed[3 * r + 2] = aUsed[3 * r + 2]! + tRes[3 * i + 2]!;
      aTasks[r] = aTasks[r]! + 1;
    }

    // overview tree and totals, from the sorted agents
    const overview: OverviewLine[] = [];
    const agentsByState: Record<string, number> = {};
    const capacity = zero();
    const usedTotal = zero();
    let idc: IdcSummary | undefined;
    let cluster: ClusterSummary | undefined;
    for (let i = 0; i < na; i++) {
      const idcName = strs[aIdc[i]!]!;
      const clusterName = strs[aCluster[i]!]!;
      if (!idc || idc.idc !== idcName) {
        idc = { idc: idcName, clusters: [], agents: 0, byState: {}, capacity: zero(), used: zero(), tasks: 0 };
        overview.push({ kind: 'idc', idc: idcName, summary: idc, search: idcName.toLowerCase() });
        cluster = undefined;
      }
      if (!cluster || cluster.cluster !== clusterName) {
        cluster = { idc: idcName, cluster: clusterName, agents: 0, byState: {}, capacity: zero(), used: zero(), tasks: 0 };
        idc.clusters.push(cluster);
        overview.push({ kind: 'cluster', idc: idcName, cluster: clusterName, summary: cluster, search: `${idcName}/${clusterName}`.toLowerCase() });
      }
      const state = strs[aState[i]!]!;
      for (const s of [cluster, idc, undefined]) {
        const c = s ? s.capacity : capacity;
        const u = s ? s.used : usedTotal;
        c.cpus += aCap[3 * i]!;
        c.mem += aCap[3 * i + 1]!;
        c.gpus += aCap[3 * i + 2]!;
        u.cpus += aUsed[3 * i]!;
        u.mem += aUsed[3 * i + 1]!;
        u.gpus += aUsed[3 * i + 2]!;
        if (s) {
          s.agents++;
          bump(s.byState, state);
          s.tasks += aTasks[i]!;
        }
      }
      bump(agentsByState, state);
    }

    return {
      strs,
      agentCount: na,
      aName, aIdc, aCluster, aState, aAttrs, aError, aLastSeen, aDraining, aTasks, aCap, aUsed,
      taskCount: nt,
      tIds, tIdOff, tPlan, tGroup, tProject, tAgent, tDriver, tState, tPower, tHealth, tSignal, tError, tStarted, tPid, tExit, tRes, tLoop, tBackoff,
      overview,
      events: events.slice().reverse(),
      totals: { agents: na, agentsByState, tasks: nt, tasksByState, capacity, used: usedTotal },
      jobs: this.jobTables.finish(),
      deployments: this.deploymentTables.finish(),
    };
  }
}

/**
 * computeCore turns a state document (and the inventory's agents, so agents never observed still
 * show as `unknown`) into a ModelCore. Used resources of an agent are the sum of its live tasks'.
 * The document is only read; the caller may drop it afterwards.
 */
export function computeCore(data: StateData & JobTableRecords & DeploymentTableRecords, declared: readonly DeclaredAgent[] = []): ModelCore {
  const b = new CoreBuilder();
  for (const key in data.agents) b.addAgent(key, data.agents[key]!);
  for (const key in data.tasks) b.addTask(key, data.tasks[key]!);
  for (const t of JOB_TABLES) for (const key in data[t]) b.jobTables.add(t, key, data[t]![key]);
  for (const key in data.deployments) b.deploymentTables.add(key, data.deployments[key]);
  return b.finish(data.events, declared);
}

/** parseStateText parses a state document and checks its shape (shared with the in-thread reader). */
export function parseStateText(text: string, file: string): StateData {
  const data = JSON.parse(text) as StateData;
  if (typeof data !== 'object' || data === null || typeof data.agents !== 'object' || typeof data.tasks !== 'object' || !Array.isArray(data.events)) {
    throw new Error(`${file} is not a factory state document`);
  }
  data.plans ??= {};
  return data;
}
