/**
 * EtcdBackend keeps a state in etcd under a prefix (`--state etcd://host:port[,host:port…]/prefix`):
 * a key per record and per event (never one document), the newest revision in `<prefix>/meta/rev`,
 * the state id in `<prefix>/meta/id`. Reads come from a mirror in memory (StateTables), loaded page
 * by page at one etcd revision and kept current by one watch on the prefix: view() never waits.
 *
 * A commit is one etcd transaction (one round trip): it compares the writers' lock key's create
 * revision (fencing, etcd-lock.ts), the counter's mod revision (the mirror saw every commit) and
 * each guarded record's mod revision; then puts and deletes the records, puts the events (one key
 * each, contiguous revisions) and the counter. Its answer is applied to the mirror at once; the
 * watch skips what the mirror already holds. Events the retention drops (event-log.ts) are deleted
 * from etcd in batches by the lock holder.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp, IWatchResponse, Watcher } from 'etcd3';
import { StateError } from '../errors.js';
import { TABLES, type EventRecord, type EventsPage, type LockOptions, type StateBackend, type StateStaleness, type StateStats, type StateTxn, type StateView, type TableName } from './backend.js';
import {
  connectEtcd,
  etcdError,
  etcdSettingsFromEnv,
  EtcdKeys,
  formatEtcdLocation,
  parseCounter,
  parseEtcdLocation,
  type EtcdLocation,
  type EtcdSettings,
} from './etcd-client.js';
import { EtcdHostRegistry, type EtcdHostRegistryOptions } from './etcd-hosts.js';
import { EtcdLeader, type EtcdLeaderOptions } from './etcd-leader.js';
import { EtcdLock } from './etcd-lock.js';
import { EtcdStatusReader } from './etcd-status.js';
import type { EventRetention } from './event-log.js';
import { newStateId } from './state-id.js';
import { StateTables, type JournalEntry, type SnapshotDoc } from './tables.js';
import { HolderQueue } from './holder-queue.js';
import { Watchers } from './watchers.js';

/** SNAPSHOT_VERSION is the version of the documents snapshot() returns (the file backend's). */
const SNAPSHOT_VERSION = 2;

/** IMPORT_BATCH_OPS is how many keys one transaction of create() writes (under etcd's default --max-txn-ops of 128). */
const IMPORT_BATCH_OPS = 100;

/** EtcdBackendOptions tunes an etcd backend. */
export interface EtcdBackendOptions {
  retention?: EventRetention;
  settings?: Partial<EtcdSettings>;
  /** mustExist refuses a prefix without a state instead of creating one (state migrate's source). */
  mustExist?: boolean;
}

type Waiter = { mod: number; resolve: () => void };

/** EtcdBackend is the state in etcd, read from a mirror that a watch keeps current. */
export class EtcdBackend implements StateBackend {
  readonly location: string;
  private idValue = '';
  private tables: StateTables;
  /** mods holds each record's etcd mod revision (`table\0key`), for the guards' compares. */
  private mods = new Map<string, number>();
  /** applied is the etcd revision through which the mirror holds every commit. */
  private applied = 0;
  /** counterMod is the etcd mod revision of `<prefix>/meta/rev` as the mirror holds it. */
  private counterMod = 0;
  /** storedEvents counts the event keys in etcd (kept ones and those the retention dropped). */
  private storedEvents = 0;
  private watcher?: Watcher;
  private reloading?: Promise<void>;
  private readonly watchers = new Watchers();
  private readonly lockKey: EtcdLock;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly holders = new HolderQueue();
  private waiters: Waiter[] = [];
  private closed = false;
  /** quietUntil: refresh answers from the mirror without asking etcd until then (etcd did not answer). */
  private quietUntil = 0;
  /** unanswered is since when, and how, refresh could not bring the mirror up to etcd (cleared once it does). */
  private unanswered?: { since: number; error: string };
  private readonly counters: StateStats = { commits: 0, bytesWritten: 0, compactions: 0 };
  /** leaderEpoch, when set, is compared by every commit: the leader key is still the one of this epoch. */
  private leaderEpoch?: number;
  readonly keys: EtcdKeys;

  private constructor(
    readonly loc: EtcdLocation,
    private readonly client: Etcd3,
    readonly settings: EtcdSettings,
    private readonly opts: EtcdBackendOptions,
  ) {
    this.location = formatEtcdLocation(loc);
    this.keys = new EtcdKeys(loc.prefix);
    this.tables = new StateTables(opts.retention);
    this.lockKey = new EtcdLock(client, this.keys, loc, settings);
  }

  /** open connects, creates the state id when the prefix is empty, loads the mirror and starts the watch. */
  static async open(location: string, opts: EtcdBackendOptions = {}): Promise<EtcdBackend> {
    const loc = parseEtcdLocation(location);
    const settings = { ...etcdSettingsFromEnv(), ...opts.settings };
    const client = await connectEtcd(loc, settings);
    const b = new EtcdBackend(loc, client, settings, opts);
    try {
      await b.ensureId();
      await b.load();
      await b.startWatch();
    } catch (err) {
      b.closed = true;
      client.close();
      throw etcdError(err, `opening state ${b.location}`, loc);
    }
    return b;
  }

  get id(): string {
    return this.idValue;
  }

  get locked(): boolean {
    return this.lockKey.held;
  }

  /** lockLease is the etcd lease the writers' lock is attached to while held (for tests and status). */
  get lockLease(): string | undefined {
    return this.lockKey.leaseIdOf;
  }

  view(): StateView {
    return this.tables;
  }

  /** election makes the leader election of the control hosts on this state (etcd-leader.ts). */
  election(opts: EtcdLeaderOptions): EtcdLeader {
    return new EtcdLeader(this.client, { leader: this.keys.leader, beat: this.keys.leaderBeat }, this.loc, opts);
  }

  /** hostRegistry makes this host's registration under `<prefix>/hosts/` (etcd-hosts.ts). */
  hostRegistry(opts: EtcdHostRegistryOptions): EtcdHostRegistry {
    return new EtcdHostRegistry(this.client, this.keys, this.loc, opts);
  }

  /** statusReader makes a reader of the members, the leader and the hosts on this handle's client (etcd-status.ts). */
  statusReader(): EtcdStatusReader {
    return new EtcdStatusReader(this.client, this.loc, this.settings);
  }

  /**
   * fenceByLeader makes every commit from now on also compare the leader key's create revision with
   * epoch (a host that no longer leads writes nothing), and lets the writers' lock take over at once
   * from a holder of an older epoch.
   */
  fenceByLeader(epoch: number): void {
    this.leaderEpoch = epoch;
    this.lockKey.epoch = epoch;
  }

  private modKey(table: TableName, key: string): string {
    return `${table}\0${key}`;
  }

  /** ensureId reads the state id, or creates it (with the counter) when the prefix holds nothing. */
  private async ensureId(): Promise<void> {
    const got = await this.client.kv.range({ key: this.keys.id });
    const kv = got.kvs[0];
    if (kv) {
      this.idValue = kv.value.toString('utf8');
      return;
    }
    const any = await this.client.kv.range({ key: this.keys.all, range_end: this.keys.allEnd, keys_only: true, limit: 2 });
    const foreign = any.kvs.filter((k) => !k.key.equals(this.keys.lock));
    if (foreign.length > 0) {
      throw new StateError(`etcd prefix ${this.loc.prefix} holds keys (${foreign[0]!.key.toString('utf8')}) but no state id: an interrupted \`factory state migrate\`, or not a factory state`, {
        code: 'E_STATE_CORRUPT',
        hint: `if it was a migration, delete the prefix (etcdctl del --prefix ${this.loc.prefix}/) and migrate again`,
      });
    }
    if (this.opts.mustExist) throw new StateError(`there is no state at ${this.location}`, { code: 'E_STATE_MISSING', hint: 'check the endpoints and the prefix' });
    const id = newStateId();
    const res = await this.client.kv.txn({
      compare: [{ key: this.keys.id, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: this.keys.id, value: Buffer.from(id) } }, { request_put: { key: this.keys.counter, value: Buffer.from(JSON.stringify({ rev: 0 })) } }],
      failure: [{ request_range: { key: this.keys.id } }],
    });
    // another process created it first: use theirs
    this.idValue = res.succeeded ? id : res.responses[0]!.response_range.kvs[0]!.value.toString('utf8');
  }

  /** load reads every key under the prefix, page by page at one revision, into a new mirror. */
  private async load(): Promise<void> {
    const docTables: { [T in TableName]?: Record<string, unknown> } = {};
    for (const t of TABLES) docTables[t] = {};
    const mods = new Map<string, number>();
    const events: EventRecord[] = [];
    let counterKv: IKeyValue | undefined;
    let dropped = 0;
    let revision = 0;
    let cursor: Buffer = this.keys.all;
    for (;;) {
      const page = await this.client.kv.range({ key: cursor, range_end: this.keys.allEnd, limit: this.settings.pageSize, ...(revision ? { revision } : {}) });
      if (!revision) revision = Number(page.header.revision);
      for (const kv of page.kvs) {
        const k = this.keys.parse(kv.key);
        if (!k) continue;
        if (k.kind === 'record') {
          docTables[k.table]![k.key] = JSON.parse(kv.value.toString('utf8'));
          mods.set(this.modKey(k.table, k.key), Number(kv.mod_revision));
        } else if (k.kind === 'event') events.push(JSON.parse(kv.value.toString('utf8')) as EventRecord);
        else if (k.kind === 'counter') counterKv = kv;
        else if (k.kind === 'dropped') dropped = Number(kv.value.toString('utf8')) || 0;
      }
      if (!page.more || page.kvs.length === 0) break;
      cursor = Buffer.concat([page.kvs.at(-1)!.key, Buffer.from([0])]);
    }
    const tables = new StateTables(this.opts.retention);
    tables.load({ rev: parseCounter(counterKv).rev, droppedThrough: dropped, events, ...(docTables as object) });
    this.tables = tables;
    this.mods = mods;
    this.applied = revision;
    this.counterMod = Number(counterKv?.mod_revision ?? 0);
    this.storedEvents = events.length;
    this.notifyWaiters();
  }

  private async startWatch(): Promise<void> {
    const w = await this.client
      .watch()
      .prefix(this.keys.all)
      .startRevision(String(this.applied + 1))
      .create();
    if (this.closed) {
      await w.cancel();
      return;
    }
    this.watcher = w;
    w.on('data', (res: IWatchResponse) => {
      try {
        this.onWatch(res);
      } catch (err) {
        process.stderr.write(`factory: warning: cannot apply a change of etcd state ${this.location}: ${(err as Error).message}; reloading\n`);
        this.scheduleReload();
      }
    });
    // a canceled watch (its revision compacted away) or a broken one: read everything again
    w.on('error', () => this.scheduleReload());
    // etcd answers again: refresh asks it again
    w.on('connected', () => (this.quietUntil = 0));
  }

  /** onWatch applies the changes of a watch response, one etcd revision (one transaction) at a time. */
  private onWatch(res: IWatchResponse): void {
    let group: IKeyValue[] = [];
    let types: string[] = [];
    let rev = 0;
    const flush = () => {
      if (group.length) this.applyGroup(rev, group, types);
      group = [];
      types = [];
    };
    for (const ev of res.events) {
      const r = Number(ev.kv.mod_revision);
      if (r !== rev) flush();
      rev = r;
      group.push(ev.kv);
      types.push(ev.type);
    }
    flush();
  }

  private applyGroup(rev: number, kvs: IKeyValue[], types: string[]): void {
    if (kvs.some((kv) => kv.key.equals(this.keys.lock))) this.lockKey.wake();
    this.quietUntil = 0;
    this.unanswered = undefined;
    if (rev <= this.applied) return; // this handle's own commit, applied when etcd answered it
    const ops: JournalEntry['ops'] = [];
    const events: EventRecord[] = [];
    let counter: ReturnType<typeof parseCounter> | undefined;
    const mods: [string, number | undefined][] = [];
    kvs.forEach((kv, i) => {
      const k = this.keys.parse(kv.key);
      if (!k) return;
      const put = types[i] === 'Put';
      if (k.kind === 'record') {
        ops.push({ table: k.table, key: k.key, value: put ? JSON.parse(kv.value.toString('utf8')) : null });
        mods.push([this.modKey(k.table, k.key), put ? rev : undefined]);
      } else if (k.kind === 'event' && put) events.push(JSON.parse(kv.value.toString('utf8')) as EventRecord);
      else if (k.kind === 'counter' && put) counter = parseCounter(kv);
    });
    if (ops.length === 0 && events.length === 0 && !counter) return; // the lock, or the retention's deletes
    if (counter) {
      events.sort((a, b) => a.rev - b.rev);
      const base = counter.rev - Math.max(1, events.length);
      if (base !== this.tables.rev) {
        // a commit this mirror never saw (a watch that resumed too late): read everything again
        if (counter.rev > this.tables.rev) this.scheduleReload();
        return;
      }
      this.applyEntry(rev, { rev: counter.rev, ops, events }, mods);
      this.counterMod = rev;
    } else {
      // records written outside a commit (a migration filling the prefix): they carry no revision
      this.applyEntry(rev, { rev: this.tables.rev, ops, events: [] }, mods);
    }
    this.notifyWaiters();
  }

  private applyEntry(rev: number, entry: JournalEntry, mods: [string, number | undefined][]): void {
    for (const [k, m] of mods) {
      if (m === undefined) this.mods.delete(k);
      else this.mods.set(k, m);
    }
    this.applied = rev;
    const published = this.tables.apply(entry);
    this.storedEvents += entry.events.length;
    this.watchers.publish(published);
  }

  private scheduleReload(): void {
    if (this.reloading || this.closed) return;
    const run = async () => {
      try {
        await this.watcher?.cancel().catch(() => undefined);
        this.watcher = undefined;
        const before = this.tables.rev;
        await this.load();
        await this.startWatch();
        this.watchers.publish(this.tables.log.since(before).events);
      } catch (err) {
        process.stderr.write(`factory: warning: cannot reload etcd state ${this.location}: ${(err as Error).message}; retrying\n`);
        setTimeout(() => this.scheduleReload(), 1000).unref();
      } finally {
        this.reloading = undefined;
      }
    };
    // in turn with commits: a reload replaces the mirror a commit is applying to
    const next = this.chain.then(run, run);
    this.reloading = next;
    this.chain = next.catch(() => undefined);
  }

  private notifyWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) (this.counterMod >= w.mod ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** caughtUp resolves once the mirror holds the commit at etcd revision mod; false after timeoutMs. */
  private caughtUp(mod: number, timeoutMs: number): Promise<boolean> {
    if (this.counterMod >= mod) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: Waiter = {
        mod,
        resolve: () => {
          clearTimeout(t);
          resolve(true);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /**
   * refresh waits (up to FACTORY_ETCD_TIMEOUT) until the watch brought the newest commit. When etcd
   * does not answer, the mirror answers as it stands: reads never fail for want of a quorum.
   */
  async refresh(): Promise<void> {
    if (this.lockKey.held || this.closed || Date.now() < this.quietUntil) return;
    let mod: number;
    try {
      const r = await this.client.kv.range({ key: this.keys.counter, keys_only: true });
      mod = Number(r.kvs[0]?.mod_revision ?? 0);
    } catch (err) {
      // etcd unreachable: the last known state, and no more waiting on etcd until it answers the
      // watch again (or 5 s passed); staleness() says so meanwhile
      this.quietUntil = Date.now() + 5_000;
      this.unanswered = { since: this.unanswered?.since ?? Date.now(), error: etcdError(err, 'a read', this.loc).message };
      return;
    }
    if (await this.caughtUp(mod, this.settings.timeoutMs)) this.unanswered = undefined;
    else this.unanswered = { since: this.unanswered?.since ?? Date.now(), error: `the watch on etcd (members ${this.loc.endpoints.join(', ')}) did not bring etcd revision ${mod} within ${this.settings.timeoutMs} ms` };
  }

  /** staleness says, while etcd does not answer this handle's refresh, since when and why: reads answer from the mirror as it stands. */
  staleness(): StateStaleness | undefined {
    const u = this.unanswered;
    if (!u) return undefined;
    return { since: new Date(u.since).toISOString(), reason: `${u.error}; this is the state as this host last saw it (revision ${this.tables.rev})` };
  }

  async commit(txn: StateTxn): Promise<number> {
    const run = () => this.commitNow(txn);
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async commitNow(txn: StateTxn): Promise<number> {
    if (!this.lockKey.held) throw new StateError('commit without the state lock', { code: 'E_STATE_UNLOCKED' });
    this.tables.check(txn);
    const { events, rev } = this.tables.stamp(txn.events);
    const txnId = randomBytes(6).toString('hex');
    const compare: ICompare[] = [this.lockKey.fence(), { key: this.keys.counter, target: 'Mod', result: 'Equal', mod_revision: this.counterMod }];
    if (this.leaderEpoch !== undefined) compare.push({ key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: this.leaderEpoch });
    for (const g of txn.guards ?? []) {
      const mod = this.tables.get(g.table, g.key) === undefined ? 0 : (this.mods.get(this.modKey(g.table, g.key)) ?? 0);
      compare.push(
        mod === 0
          ? { key: this.keys.record(g.table, g.key), target: 'Create', result: 'Equal', create_revision: 0 }
          : { key: this.keys.record(g.table, g.key), target: 'Mod', result: 'Equal', mod_revision: mod },
      );
    }
    const success: IRequestOp[] = [];
    let bytes = 0;
    for (const op of txn.ops) {
      const key = this.keys.record(op.table, op.key);
      if (op.value === undefined || op.value === null) {
        success.push({ request_delete_range: { key } });
        bytes += key.length + 8;
      } else {
        const value = Buffer.from(JSON.stringify(op.value));
        success.push({ request_put: { key, value } });
        bytes += key.length + value.length + 8;
      }
    }
    for (const e of events) {
      const key = this.keys.event(e.rev);
      const value = Buffer.from(JSON.stringify(e));
      success.push({ request_put: { key, value } });
      bytes += key.length + value.length + 8;
    }
    const counterValue = Buffer.from(JSON.stringify({ rev, txn: txnId }));
    success.push({ request_put: { key: this.keys.counter, value: counterValue } });
    bytes += this.keys.counter.length + counterValue.length + 8 + compare.length * 32;
    if (bytes > this.settings.maxRequestBytes) {
      throw new StateError(
        `this commit is ${(bytes / 1048576).toFixed(2)} MiB (${txn.ops.length} records, ${events.length} events): etcd takes at most ${(this.settings.maxRequestBytes / 1048576).toFixed(2)} MiB per request; a commit is atomic and is not split, so nothing was written`,
        { code: 'E_STATE_TOO_LARGE', hint: 'commit fewer records at a time, or raise the members\' --max-request-bytes and FACTORY_ETCD_MAX_REQUEST_BYTES together' },
      );
    }
    let res;
    try {
      res = await this.client.kv.txn({
        compare,
        success,
        failure: [{ request_range: { key: this.keys.lock } }, { request_range: { key: this.keys.counter } }, { request_range: { key: this.keys.leader } }],
      });
    } catch (err) {
      throw etcdError(err, 'the commit', this.loc, { unknownOutcome: true });
    }
    let etcdRev = Number(res.header.revision);
    if (!res.succeeded) {
      const lockKv = res.responses[0]?.response_range.kvs[0];
      const counterKv = res.responses[1]?.response_range.kvs[0];
      const leaderKv = res.responses[2]?.response_range.kvs[0];
      if (parseCounter(counterKv).txn === txnId) {
        // an attempt whose answer was lost did commit (the client retried on another member)
        etcdRev = Number(counterKv!.mod_revision);
      } else if (this.leaderEpoch !== undefined && Number(leaderKv?.create_revision ?? 0) !== this.leaderEpoch) {
        throw new StateError(`this control host no longer leads state ${this.location} (its epoch ${this.leaderEpoch}; ${leaderKv ? `epoch ${Number(leaderKv.create_revision)} leads now` : 'nobody leads now'}): the commit was refused and nothing was written`, {
          code: 'E_STATE_FENCED',
          hint: 'the leader does the writes: send them to it',
        });
      } else if (!lockKv || Number(lockKv.create_revision) !== Number(this.lockKey.fence().create_revision)) {
        throw this.lockKey.fencedError(lockKv);
      } else if (Number(counterKv?.mod_revision ?? 0) !== this.counterMod) {
        throw new StateError(`the state on etcd moved under this writer (revision ${parseCounter(counterKv).rev}, this handle has ${this.tables.rev}): an earlier commit whose answer was lost, or a writer without the lock; nothing was written`, {
          code: 'E_STATE_CONFLICT',
          hint: 'retry: the change was not applied',
        });
      } else {
        const names = (txn.guards ?? []).map((g) => `${g.table}/${g.key}`).join(', ');
        throw new StateError(`${names} was changed by another writer; nothing was written`, { code: 'E_STATE_CONFLICT', hint: 'retry: the change was not applied' });
      }
    }
    if (etcdRev > this.applied) {
      const mods: [string, number | undefined][] = txn.ops.map((o) => [this.modKey(o.table, o.key), o.value === undefined || o.value === null ? undefined : etcdRev]);
      this.applyEntry(etcdRev, { rev, ops: txn.ops.map((o) => ({ table: o.table, key: o.key, value: o.value ?? null })), events }, mods);
      this.counterMod = etcdRev;
      this.notifyWaiters();
    }
    this.counters.commits += 1;
    this.counters.bytesWritten += bytes;
    await this.dropRetiredEvents().catch((err: unknown) => process.stderr.write(`factory: warning: cannot delete retired events from etcd: ${(err as Error).message}\n`));
    return rev;
  }

  /**
   * dropRetiredEvents deletes from etcd the events the retention dropped from the mirror, once they
   * number a tenth of the bound (runs of them as one range each), and records droppedThrough.
   */
  private async dropRetiredEvents(): Promise<void> {
    const kept = this.tables.log.all().length;
    const slack = Math.max(64, Math.floor(this.tables.log.retention.maxEvents / 10));
    if (this.storedEvents - kept < slack) return;
    this.tables.log.expire();
    const keep = new Set(this.tables.log.all().map((e) => e.rev));
    const stored: number[] = [];
    let cursor: Buffer = this.keys.events;
    for (;;) {
      const page = await this.client.kv.range({ key: cursor, range_end: this.keys.eventsEnd, keys_only: true, limit: 10_000 });
      for (const kv of page.kvs) {
        const k = this.keys.parse(kv.key);
        if (k?.kind === 'event') stored.push(k.rev);
      }
      if (!page.more || page.kvs.length === 0) break;
      cursor = Buffer.concat([page.kvs.at(-1)!.key, Buffer.from([0])]);
    }
    const ranges: [number, number][] = [];
    for (let i = 0; i < stored.length; i++) {
      if (keep.has(stored[i]!)) continue;
      const prev = ranges.at(-1);
      if (prev && prev[1] === stored[i - 1]) prev[1] = stored[i]!;
      else ranges.push([stored[i]!, stored[i]!]);
    }
    for (let i = 0; i < ranges.length || i === 0; i += IMPORT_BATCH_OPS) {
      const ops: IRequestOp[] = ranges.slice(i, i + IMPORT_BATCH_OPS).map(([a, b]) => ({ request_delete_range: { key: this.keys.event(a), range_end: this.keys.event(b + 1) } }));
      if (i + IMPORT_BATCH_OPS >= ranges.length) ops.push({ request_put: { key: this.keys.dropped, value: Buffer.from(String(this.tables.log.droppedThrough)) } });
      const res = await this.client.kv.txn({ compare: [this.lockKey.fence()], success: ops, failure: [] });
      if (!res.succeeded) return;
    }
    this.storedEvents = stored.filter((r) => keep.has(r)).length;
    this.counters.compactions += 1;
  }

  eventsSince(rev: number, filter?: (e: EventRecord) => boolean): EventsPage {
    return this.tables.log.since(rev, filter);
  }

  watch(fn: (e: EventRecord) => void): () => void {
    return this.watchers.add(fn);
  }

  /** subscribers is how many watch() callbacks are registered (for /metrics). */
  get subscribers(): number {
    return this.watchers.size;
  }

  async lock(opts: LockOptions = {}): Promise<void> {
    // one holder per handle at a time (a control host serves several requests), then etcd's lock
    await this.holders.enter(this.location, opts.timeoutMs === 0);
    try {
      const { counterMod } = await this.lockKey.acquire(opts);
      // the mirror must hold every commit before this writer reads and guards against it
      if (!(await this.caughtUp(counterMod, Math.max(this.settings.timeoutMs, 10_000)))) {
        throw new StateError(`the watch on etcd state ${this.location} did not bring the newest commit in time`, { code: 'E_STATE_UNAVAILABLE', hint: 'is a quorum of the etcd members up and reachable?' });
      }
    } catch (err) {
      await this.lockKey.release();
      this.holders.leave();
      throw err;
    }
  }

  async unlock(): Promise<void> {
    await this.chain;
    await this.lockKey.release();
    this.holders.leave();
  }

  stats(): StateStats {
    return { ...this.counters };
  }

  /** snapshot returns the mirror as the file backend's snapshot document (state migrate). */
  snapshot(): SnapshotDoc {
    return this.tables.document(this.idValue, SNAPSHOT_VERSION);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.unlock();
    this.closed = true;
    await this.chain;
    await this.watcher?.cancel().catch(() => undefined);
    await this.lockKey.close();
    this.client.close();
  }

  /**
   * create writes a state (a snapshot document: id, records, events, revision) under an empty
   * prefix, holding the lock: records and events in batches, then the counter and the id in the
   * last transaction (a prefix with keys and no id is an interrupted migration: open refuses it).
   */
  static async create(location: string, doc: SnapshotDoc, opts: EtcdBackendOptions = {}): Promise<void> {
    const loc = parseEtcdLocation(location);
    const settings = { ...etcdSettingsFromEnv(), ...opts.settings };
    const client = await connectEtcd(loc, settings);
    const keys = new EtcdKeys(loc.prefix);
    const lock = new EtcdLock(client, keys, loc, settings);
    try {
      const there = await client.kv.range({ key: keys.all, range_end: keys.allEnd, count_only: true });
      if (Number(there.count) > 0) {
        throw new StateError(`etcd prefix ${loc.prefix} is not empty (${there.count} keys): a state is copied only into an empty prefix`, { code: 'E_STATE_EXISTS', hint: 'pick another prefix, or delete that one first' });
      }
      await lock.acquire({ timeoutMs: 0, purpose: 'state migrate' });
      const puts: IRequestOp[] = [];
      for (const t of TABLES) {
        for (const [k, v] of Object.entries(doc[t] ?? {})) puts.push({ request_put: { key: keys.record(t, k), value: Buffer.from(JSON.stringify(v)) } });
      }
      for (const e of doc.events) puts.push({ request_put: { key: keys.event(e.rev), value: Buffer.from(JSON.stringify(e)) } });
      let batch: IRequestOp[] = [];
      let bytes = 0;
      const send = async () => {
        if (batch.length === 0) return;
        const res = await client.kv.txn({ compare: [lock.fence()], success: batch, failure: [{ request_range: { key: keys.lock } }] });
        if (!res.succeeded) throw lock.fencedError(res.responses[0]?.response_range.kvs[0]);
        batch = [];
        bytes = 0;
      };
      for (const p of puts) {
        const size = p.request_put!.key!.length + p.request_put!.value!.length;
        if (batch.length >= IMPORT_BATCH_OPS || bytes + size > settings.maxRequestBytes / 2) await send();
        batch.push(p);
        bytes += size;
      }
      await send();
      batch = [
        { request_put: { key: keys.dropped, value: Buffer.from(String(doc.droppedThrough ?? 0)) } },
        { request_put: { key: keys.counter, value: Buffer.from(JSON.stringify({ rev: doc.rev })) } },
        { request_put: { key: keys.id, value: Buffer.from(doc.id) } },
      ];
      await send();
    } catch (err) {
      throw etcdError(err, `writing state ${formatEtcdLocation(loc)}`, loc);
    } finally {
      await lock.close().catch(() => undefined);
      client.close();
    }
  }
}
