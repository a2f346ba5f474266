/**
 * StateTables holds the committed records of a state in memory, with the revision each record was
 * last written at and the event log. Both backends keep one; applying a transaction to it is
 * synchronous, so a reader never sees half of one.
 */
import { StateError } from '../errors.js';
import { TABLES, type EventInput, type EventRecord, type StateTxn, type StateView, type TableName, type TableRecords } from './backend.js';
import { EventLog, type EventRetention } from './event-log.js';

/** StateTables is the in-memory committed state. */
export class StateTables implements StateView {
  private readonly maps: { [T in TableName]: Map<string, TableRecords[T]> } = {
    agents: new Map(),
    tasks: new Map(),
    plans: new Map(),
    tokens: new Map(),
    jobs: new Map(),
    cursors: new Map(),
    runs: new Map(),
    deployments: new Map(),
  };
  private readonly revs: Record<TableName, Map<string, number>> = { agents: new Map(), tasks: new Map(), plans: new Map(), tokens: new Map(), jobs: new Map(), cursors: new Map(), runs: new Map(), deployments: new Map() };
  readonly log: EventLog;
  /** counter is the newest revision applied, events or not (a commit without events still moves it). */
  private counter = 0;

  constructor(retention?: EventRetention) {
    this.log = new EventLog(retention);
  }

  get rev(): number {
    return Math.max(this.counter, this.log.latest);
  }

  get<T extends TableName>(table: T, key: string): TableRecords[T] | undefined {
    return this.maps[table].get(key) as TableRecords[T] | undefined;
  }

  list<T extends TableName>(table: T): TableRecords[T][] {
    return [...this.maps[table].values()] as TableRecords[T][];
  }

  modRev(table: TableName, key: string): number {
    return this.revs[table].get(key) ?? 0;
  }

  size(table: TableName): number {
    return this.maps[table].size;
  }

  /** load replaces everything (from a snapshot). */
  load(doc: { rev: number; droppedThrough?: number; events: EventRecord[] } & { [T in TableName]?: Record<string, TableRecords[T]> }): void {
    for (const t of TABLES) {
      this.maps[t].clear();
      this.revs[t].clear();
      for (const [k, v] of Object.entries(doc[t] ?? {})) (this.maps[t] as Map<string, unknown>).set(k, v);
    }
    this.counter = doc.rev;
    this.log.load(doc.events, doc.rev, doc.droppedThrough ?? 0);
  }

  /** check throws when a guard of the transaction no longer holds. */
  check(txn: StateTxn): void {
    for (const g of txn.guards ?? []) {
      const now = this.maps[g.table].has(g.key) ? this.modRev(g.table, g.key) : 0;
      if (now !== g.rev) {
        throw new StateError(`${g.table}/${g.key} was changed by another writer (revision ${now}, expected ${g.rev})`, { code: 'E_STATE_CONFLICT', hint: 'retry: the change was not applied' });
      }
    }
  }

  /** stamp gives the transaction's events their revisions and times (the revision of the transaction is the last). */
  stamp(events: EventInput[] | undefined, now = new Date().toISOString()): { events: EventRecord[]; rev: number } {
    const out: EventRecord[] = [];
    let rev = this.rev;
    for (const e of events ?? []) out.push({ ...e, at: e.at ?? now, rev: ++rev });
    // a transaction without events still moves the revision, so modRev and watchers see it
    if (out.length === 0) rev += 1;
    return { events: out, rev };
  }

  /** apply commits a stamped transaction to memory; returns the events to publish. */
  apply(entry: JournalEntry): EventRecord[] {
    for (const op of entry.ops) {
      const map = this.maps[op.table] as Map<string, unknown>;
      if (op.value === undefined || op.value === null) {
        map.delete(op.key);
        this.revs[op.table].delete(op.key);
      } else {
        map.set(op.key, op.value);
        this.revs[op.table].set(op.key, entry.rev);
      }
    }
    for (const e of entry.events) this.log.append(e);
    this.counter = Math.max(this.counter, entry.rev);
    return entry.events;
  }

  /** document returns the snapshot document of the current state. */
  document(id: string, version: number): SnapshotDoc {
    const doc: SnapshotDoc = { version, id, rev: this.rev, droppedThrough: this.log.droppedThrough, agents: {}, tasks: {}, plans: {}, tokens: {}, jobs: {}, cursors: {}, runs: {}, deployments: {}, events: this.log.all() };
    for (const t of TABLES) {
      const out = doc[t] as Record<string, unknown>;
      for (const [k, v] of this.maps[t]) out[k] = v;
    }
    return doc;
  }
}

/** JournalEntry is one committed transaction as the journal stores it (value null: delete). */
export interface JournalEntry {
  rev: number;
  ops: { table: TableName; key: string; value?: unknown }[];
  events: EventRecord[];
}

/** SnapshotDoc is the snapshot file's document (version 2). */
export interface SnapshotDoc {
  version: number;
  id: string;
  rev: number;
  droppedThrough: number;
  agents: Record<string, TableRecords['agents']>;
  tasks: Record<string, TableRecords['tasks']>;
  plans: Record<string, TableRecords['plans']>;
  tokens: Record<string, TableRecords['tokens']>;
  /** jobs and runs are absent from snapshots written before jobs existed (read as empty). */
  jobs?: Record<string, TableRecords['jobs']>;
  cursors?: Record<string, TableRecords['cursors']>;
  runs?: Record<string, TableRecords['runs']>;
  /** deployments are absent from snapshots written before deployments existed (read as empty). */
  deployments?: Record<string, TableRecords['deployments']>;
  events: EventRecord[];
}
