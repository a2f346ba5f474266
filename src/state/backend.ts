/**
 * The state interface. Every caller outside src/state reads and writes the state through a
 * StateBackend: a view of committed records, atomic transactions of puts and deletes with the
 * events they publish, a revision per event, and a watch from a revision. The file backend
 * (file-backend.ts) is the embedded default; the etcd backend (etcd-backend.ts) keeps a state in etcd.
 */
import type { DeploymentRecord } from '../deploy/types.js';
import type { JobCursor, JobRecord, RunRecord } from '../jobs/types.js';
import type { AgentRecord, PlanRecord, TaskRecord, TokenRecord } from './types.js';

/** TableRecords maps each table of the state to its record type. */
export interface TableRecords {
  agents: AgentRecord;
  tasks: TaskRecord;
  plans: PlanRecord;
  tokens: TokenRecord;
  /** jobs are the scheduled jobs of the applied plans, by `<plan>/<job>`. */
  jobs: JobRecord;
  /** cursors are where each job's schedule stands (the control host's scheduler of runs writes them). */
  cursors: JobCursor;
  /** runs are the jobs' runs, by `<plan>/<job>/<slot>`. */
  runs: RunRecord;
  /** deployments are the rollouts of changed groups, one record per deployment, by id (src/deploy). */
  deployments: DeploymentRecord;
}

/** TableName is one table of the state. */
export type TableName = keyof TableRecords;

/** TABLES lists the tables in a fixed order (snapshots and views). */
export const TABLES: readonly TableName[] = ['agents', 'tasks', 'plans', 'tokens', 'jobs', 'cursors', 'runs', 'deployments'];

/** StateOp is one write of a transaction: a put (value set) or a delete (value undefined). */
export type StateOp = { [T in TableName]: { table: T; key: string; value?: TableRecords[T] } }[TableName];

/** EventTopic is what an event is about; clients filter the stream by topic. */
export type EventTopic = 'task' | 'agent' | 'plan' | 'reconcile' | 'vm' | 'token' | 'state' | 'job' | 'deployment';

/** EVENT_TOPICS lists every topic. */
export const EVENT_TOPICS: readonly EventTopic[] = ['task', 'agent', 'plan', 'reconcile', 'vm', 'token', 'state', 'job', 'deployment'];

/** EventInput is an event as a writer publishes it; the backend stamps rev (and at when missing). */
export interface EventInput {
  topic: EventTopic;
  /** kind is what happened, e.g. task-started, agent-lost, plan-applied. */
  kind: string;
  message: string;
  at?: string;
  task?: string;
  agent?: string;
  plan?: string;
  project?: string;
  /** job is the job an event is about (`<plan>/<job>`). */
  job?: string;
  /** run is the run an event is about (`<plan>/<job>/<slot>`). */
  run?: string;
  /** slot is the slot time (UTC ISO) a job event is about. */
  slot?: string;
  /** deployment is the deployment an event is about (its id). */
  deployment?: string;
  /** epoch is the leadership epoch a `leader-…` event is about (control hosts on etcd). */
  epoch?: number;
  /** by is who caused it: a token id, `local:<user>`, or `control-host`. */
  by?: string;
}

/** EventRecord is a committed event: its revision is unique and grows by one per event. */
export interface EventRecord extends EventInput {
  rev: number;
  at: string;
}

/** StateGuard makes a transaction fail unless a record is still at a revision (0: absent). */
export interface StateGuard {
  table: TableName;
  key: string;
  rev: number;
}

/** StateTxn is one atomic transaction: all of its writes and events are committed, or none. */
export interface StateTxn {
  ops: StateOp[];
  events?: EventInput[];
  guards?: StateGuard[];
}

/** StateView is a read-only view of committed records. */
export interface StateView {
  /** rev is the revision of the newest committed event (0 for a new state). */
  readonly rev: number;
  get<T extends TableName>(table: T, key: string): TableRecords[T] | undefined;
  list<T extends TableName>(table: T): TableRecords[T][];
  /** modRev is the revision at which a record was last written (0: absent or never since open). */
  modRev(table: TableName, key: string): number;
  size(table: TableName): number;
}

/** EventsPage answers eventsSince: the events after a revision, or reset when they are no longer kept. */
export interface EventsPage {
  events: EventRecord[];
  /** reset is set when revisions after `since` were dropped by retention: the client must re-list (events then holds all that is kept). */
  reset: boolean;
  /** latest is the newest revision committed. */
  latest: number;
  /** oldest is the oldest revision still kept (latest + 1 when none is). */
  oldest: number;
}

/** LockOptions tunes how long a writer waits for another one to finish. */
export interface LockOptions {
  /** timeoutMs is how long to wait for the lock before failing (default 60 s, env FACTORY_LOCK_TIMEOUT in seconds). */
  timeoutMs?: number;
  /** purpose is shown to a waiting process, e.g. `plan apply`. */
  purpose?: string;
  /** onWait is told once, with the holder, when the lock is busy (default: a line on stderr). */
  onWait?: (holder: string) => void;
}

/** StateStats are counters for /metrics. */
export interface StateStats {
  commits: number;
  bytesWritten: number;
  compactions: number;
}

/** StateStaleness says why view() may be behind the store, and since when (a remote store that stopped answering). */
export interface StateStaleness {
  /** since is when the store first failed to answer (ISO time). */
  since: string;
  /** reason names the store and its error, and the revision view() holds. */
  reason: string;
}

/** StateBackend is the state as every caller outside src/state sees it. */
export interface StateBackend {
  /** id names this state; the tasks it starts carry it, so two states never adopt each other's tasks. */
  readonly id: string;
  /** location is what to show the operator: the directory, or the URL. */
  readonly location: string;
  /** view returns the committed records now (never waits for a writer). */
  view(): StateView;
  /** refresh catches up with commits made by other processes since the last read. */
  refresh(): Promise<void>;
  /**
   * staleness says why view() may be behind the store (undefined: as current as the last refresh
   * could make it). Only a remote store has it: the etcd backend while etcd does not answer.
   */
  staleness?(): StateStaleness | undefined;
  /** commit applies a transaction atomically and durably; returns the newest revision. The caller holds the lock. */
  commit(txn: StateTxn): Promise<number>;
  /** eventsSince returns kept events after rev (optionally filtered); reset when some were dropped. */
  eventsSince(rev: number, filter?: (e: EventRecord) => boolean): EventsPage;
  /** watch calls fn with every event committed from now on (in this process or, after refresh, others); returns the unsubscribe. */
  watch(fn: (e: EventRecord) => void): () => void;
  /** lock takes the writers' lock (waiting up to the timeout) and refreshes. */
  lock(opts?: LockOptions): Promise<void>;
  /** unlock releases the writers' lock; safe to call when not held. */
  unlock(): Promise<void>;
  /** locked says whether this handle holds the writers' lock. */
  readonly locked: boolean;
  stats(): StateStats;
  /** close releases the lock and stops following other writers. */
  close(): Promise<void>;
}
