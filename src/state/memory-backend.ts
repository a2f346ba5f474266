/** MemoryBackend is a StateBackend in memory only: for unit tests of the code above the state. */
import { StateError } from '../errors.js';
import type { EventRecord, EventsPage, LockOptions, StateBackend, StateStats, StateTxn, StateView } from './backend.js';
import type { EventRetention } from './event-log.js';
import { newStateId } from './state-id.js';
import { StateTables } from './tables.js';
import { Watchers } from './watchers.js';

/** MemoryBackend keeps the state in this process; its lock is a simple in-process mutex. */
export class MemoryBackend implements StateBackend {
  readonly id: string;
  readonly location = 'memory';
  private readonly tables: StateTables;
  private readonly watchers = new Watchers();
  private held = false;
  private waiters: (() => void)[] = [];
  private readonly counters: StateStats = { commits: 0, bytesWritten: 0, compactions: 0 };

  constructor(opts: { id?: string; retention?: EventRetention } = {}) {
    this.id = opts.id ?? newStateId();
    this.tables = new StateTables(opts.retention);
  }

  get locked(): boolean {
    return this.held;
  }

  view(): StateView {
    return this.tables;
  }

  async refresh(): Promise<void> {}

  async commit(txn: StateTxn): Promise<number> {
    if (!this.held) throw new StateError('commit without the state lock', { code: 'E_STATE_UNLOCKED' });
    this.tables.check(txn);
    const { events, rev } = this.tables.stamp(txn.events);
    const published = this.tables.apply({ rev, ops: txn.ops, events });
    this.counters.commits += 1;
    this.counters.bytesWritten += JSON.stringify(txn).length;
    this.watchers.publish(published);
    return rev;
  }

  eventsSince(rev: number, filter?: (e: EventRecord) => boolean): EventsPage {
    return this.tables.log.since(rev, filter);
  }

  watch(fn: (e: EventRecord) => void): () => void {
    return this.watchers.add(fn);
  }

  async lock(_opts: LockOptions = {}): Promise<void> {
    while (this.held) await new Promise<void>((r) => this.waiters.push(r));
    this.held = true;
  }

  async unlock(): Promise<void> {
    this.held = false;
    this.waiters.shift()?.();
  }

  stats(): StateStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    await this.unlock();
  }
}
