/**
 * FileBackend is the embedded state: one directory, no daemon. A snapshot (`state.json`, lowdb's
 * JSON document, rewritten only at compaction) plus a journal of committed transactions
 * (`journal-<rev>.ndjson`, one fsync'd line per commit). A commit writes in proportion to what
 * changed; the journal is folded into a new snapshot when it outgrows the snapshot (and 4 MiB).
 * Writers hold the directory's lock (lock.ts); readers never wait: they read the snapshot and the
 * journal's complete lines, and follow other processes' commits by reading the journal's tail.
 */
import { promises as fsp, constants as fsc, watch as fsWatch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { StateError } from '../errors.js';
import type { EventRecord, EventsPage, LockOptions, StateBackend, StateStats, StateTxn, StateView } from './backend.js';
import type { EventRetention } from './event-log.js';
import { encodeEntry, JOURNAL_RE, journalName, parseJournal } from './journal.js';
import { FileLock } from './lock.js';
import { migrateV1, V1_BACKUP } from './migrate.js';
import { corruptError, errMessage, syncDir, writeFileAtomic } from './snapshot-file.js';
import { newStateId } from './state-id.js';
import { StateTables, type SnapshotDoc } from './tables.js';
import { HolderQueue } from './holder-queue.js';
import { Watchers } from './watchers.js';

/** STATE_FILE is the snapshot's name inside the state directory. */
export const STATE_FILE = 'state.json';
/** SNAPSHOT_VERSION is the version of the snapshot document. */
export const SNAPSHOT_VERSION = 2;

/** FileBackendOptions tunes a file backend. */
export interface FileBackendOptions {
  retention?: EventRetention;
  /** compactBytes is the least journal size that triggers a compaction (default 4 MiB; env FACTORY_STATE_COMPACT_BYTES). */
  compactBytes?: number;
  /** follow watches the directory and publishes other processes' commits (a control host, the dashboard). */
  follow?: boolean;
}

/** SnapshotAdapter is lowdb's adapter for the snapshot: strict reads, atomic writes. */
class SnapshotAdapter implements Adapter<SnapshotDoc> {
  constructor(readonly file: string) {}

  async read(): Promise<SnapshotDoc | null> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StateError(`cannot read state file ${this.file}: ${errMessage(err)}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw await corruptError(this.file, `not valid JSON (${(err as Error).message})`);
    }
    const problem = checkShape(data);
    if (problem) throw await corruptError(this.file, problem);
    return data as SnapshotDoc;
  }

  async write(doc: SnapshotDoc): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(doc) + '\n');
  }
}

function checkShape(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'expected a JSON object';
  const d = data as Record<string, unknown>;
  if (d.version !== 1 && d.version !== SNAPSHOT_VERSION) return `unsupported state version ${JSON.stringify(d.version)} (this factory reads versions 1 and ${SNAPSHOT_VERSION})`;
  for (const key of ['agents', 'tasks', 'plans'] as const) {
    const v = d[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return `'${key}' must be an object`;
  }
  if (!Array.isArray(d.events)) return `'events' must be an array`;
  if (d.version === SNAPSHOT_VERSION && (typeof d.id !== 'string' || typeof d.rev !== 'number')) return `'id' and 'rev' are required in version ${SNAPSHOT_VERSION}`;
  return undefined;
}

/** FileBackend is the state in one directory. */
export class FileBackend implements StateBackend {
  readonly location: string;
  readonly file: string;
  private idValue = '';
  private tables: StateTables;
  private readonly watchers = new Watchers();
  private readonly fileLock: FileLock;
  private readonly db: Low<SnapshotDoc>;
  /** snapIno identifies the snapshot file read; a new one means another process compacted. */
  private snapIno = 0;
  private snapSize = 0;
  private journalPos = 0;
  private journalTorn = false;
  private snapRev = 0;
  private journalFh?: fsp.FileHandle;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly holders = new HolderQueue();
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private readonly counters: StateStats = { commits: 0, bytesWritten: 0, compactions: 0 };
  private readonly compactBytes: number;

  private constructor(
    readonly dir: string,
    private readonly opts: FileBackendOptions,
  ) {
    this.location = dir;
    this.file = path.join(dir, STATE_FILE);
    this.fileLock = new FileLock(dir);
    this.db = new Low<SnapshotDoc>(new SnapshotAdapter(this.file), null as unknown as SnapshotDoc);
    this.tables = new StateTables(opts.retention);
    const env = Number(process.env.FACTORY_STATE_COMPACT_BYTES);
    this.compactBytes = opts.compactBytes ?? (Number.isFinite(env) && env > 0 ? env : 4 << 20);
  }

  /** open makes sure the directory is usable, migrates a version 1 state, and reads snapshot and journal. */
  static async open(dir: string, opts: FileBackendOptions = {}): Promise<FileBackend> {
    const abs = path.resolve(dir);
    const there = await fsp.stat(abs).catch(() => undefined);
    if (there && !there.isDirectory()) {
      throw new StateError(`state directory ${abs} is a file, not a directory`, { code: 'E_STATE_DIR', hint: 'pass a folder with --state (or FACTORY_STATE); factory keeps several files there' });
    }
    try {
      await fsp.mkdir(abs, { recursive: true, mode: 0o700 });
      const st = await fsp.stat(abs);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await fsp.access(abs, fsc.W_OK | fsc.X_OK);
    } catch (err) {
      throw new StateError(`state directory ${abs} is not usable: ${errMessage(err)}`, {
        code: 'E_STATE_DIR',
        hint: 'pass a writable folder with --state (or FACTORY_STATE)',
        cause: err,
      });
    }
    const b = new FileBackend(abs, opts);
    await b.load();
    if (opts.follow) b.startFollowing();
    return b;
  }

  get id(): string {
    return this.idValue;
  }

  get locked(): boolean {
    return this.fileLock.held;
  }

  view(): StateView {
    return this.tables;
  }

  /** load reads the snapshot (creating or migrating it first) and replays the journal. */
  private async load(): Promise<void> {
    let doc = await this.db.read().then(() => this.db.data);
    if (!doc) doc = await this.create();
    if (doc.version === 1) doc = await this.migrate();
    const st = await fsp.stat(this.file);
    this.snapIno = st.ino;
    this.snapSize = st.size;
    this.idValue = doc.id;
    this.snapRev = doc.rev;
    const tables = new StateTables(this.opts.retention);
    tables.load(doc);
    this.tables = tables;
    this.journalPos = 0;
    this.journalTorn = false;
    this.db.data = null as unknown as SnapshotDoc; // the tables hold the records now
    await this.readJournal(false);
  }

  private async create(): Promise<SnapshotDoc> {
    const doc: SnapshotDoc = { version: SNAPSHOT_VERSION, id: newStateId(), rev: 0, droppedThrough: 0, agents: {}, tasks: {}, plans: {}, tokens: {}, events: [] };
    try {
      await writeFileAtomic(this.file, JSON.stringify(doc) + '\n', { exclusive: true });
      return doc;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // another process created it first: use theirs
      await this.db.read();
      return this.db.data;
    }
  }

  private async migrate(): Promise<SnapshotDoc> {
    await this.fileLock.acquire({ purpose: 'state migration' });
    try {
      await this.db.read();
      if (this.db.data.version === SNAPSHOT_VERSION) return this.db.data;
      const doc = migrateV1(this.db.data as never, newStateId(), this.opts.retention);
      await fsp.copyFile(this.file, path.join(this.dir, V1_BACKUP), fsc.COPYFILE_EXCL).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      await writeFileAtomic(this.file, JSON.stringify(doc) + '\n');
      process.stderr.write(`factory: note: migrated state ${this.dir} to version ${SNAPSHOT_VERSION}; the old file is kept as ${V1_BACKUP}\n`);
      return doc;
    } finally {
      await this.fileLock.releaseLock();
    }
  }

  private journalFile(): string {
    return path.join(this.dir, journalName(this.snapRev));
  }

  /** readJournal applies the journal's new complete lines; publish sends their events to watchers. */
  private async readJournal(publish: boolean): Promise<void> {
    let buf: Buffer;
    try {
      const fh = await fsp.open(this.journalFile(), 'r');
      try {
        const { size } = await fh.stat();
        if (size < this.journalPos) throw new StateError(`journal ${this.journalFile()} shrank`, { code: 'E_STATE_RELOAD' });
        buf = Buffer.alloc(size - this.journalPos);
        if (buf.length > 0) await fh.read(buf, 0, buf.length, this.journalPos);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const parsed = parseJournal(buf);
    if (parsed.bad) {
      throw await corruptError(this.journalFile(), `line at byte ${this.journalPos + parsed.consumed}: ${parsed.bad.why}`);
    }
    this.journalPos += parsed.consumed;
    this.journalTorn = parsed.torn;
    for (const entry of parsed.entries) {
      if (entry.rev <= this.tables.rev) continue;
      const events = this.tables.apply(entry);
      if (publish) this.watchers.publish(events);
    }
  }

  /**
   * refresh catches up with other processes' commits (a compaction by another process reloads all).
   * While this handle holds the lock it is the only writer and there is nothing to catch up with:
   * a read of the journal then would race its own appends (and count a line twice).
   */
  async refresh(): Promise<void> {
    if (this.fileLock.held) return;
    return this.catchUp();
  }

  private async catchUp(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    // in turn with this process's commits: a refresh that read a line a commit was still writing
    // would advance journalPos past it, and the commit once more (a hole of zeros, then "corrupt")
    const run = async () => {
      try {
        const st = await fsp.stat(this.file).catch(() => undefined);
        if (st && st.ino !== this.snapIno) {
          const before = this.tables.rev;
          await this.load();
          // what came after `before` is published (a compaction keeps the events)
          this.watchers.publish(this.tables.log.since(before).events);
          return;
        }
        try {
          await this.readJournal(true);
        } catch (err) {
          if ((err as StateError).code !== 'E_STATE_RELOAD') throw err;
          await this.load();
        }
      } finally {
        this.refreshing = undefined;
      }
    };
    const next = this.chain.then(run, run);
    this.refreshing = next;
    this.chain = next.catch(() => undefined);
    return next;
  }

  async commit(txn: StateTxn): Promise<number> {
    const run = () => this.commitNow(txn);
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async commitNow(txn: StateTxn): Promise<number> {
    if (!this.fileLock.held) throw new StateError('commit without the state lock', { code: 'E_STATE_UNLOCKED' });
    this.tables.check(txn);
    const { events, rev } = this.tables.stamp(txn.events);
    const entry = { rev, ops: txn.ops.map((o) => ({ table: o.table, key: o.key, value: o.value ?? null })), events };
    const line = encodeEntry(entry as never);
    try {
      if (!this.journalFh) {
        this.journalFh = await fsp.open(this.journalFile(), fsc.O_WRONLY | fsc.O_CREAT, 0o600);
        // a torn last line (a writer that crashed mid-append) was never acknowledged: cut it off
        if (this.journalTorn) {
          await this.journalFh.truncate(this.journalPos);
          this.journalTorn = false;
        }
      }
      const bytes = Buffer.from(line, 'utf8');
      await this.journalFh.write(bytes, 0, bytes.length, this.journalPos);
      await this.journalFh.datasync();
      this.journalPos += bytes.length;
      this.counters.bytesWritten += bytes.length;
    } catch (err) {
      // the line may be half written: cut it off so the journal stays whole, then report
      await this.journalFh?.truncate(this.journalPos).catch(() => undefined);
      throw new StateError(`cannot write state journal ${this.journalFile()}: ${errMessage(err)}`, {
        code: 'E_STATE_WRITE',
        hint: 'check that the state directory (--state) is writable and the disk is not full; the change was not recorded',
        cause: err,
      });
    }
    const published = this.tables.apply(entry as never);
    this.counters.commits += 1;
    this.watchers.publish(published);
    if (this.journalPos > Math.max(this.compactBytes, this.snapSize)) await this.compact();
    return rev;
  }

  /** compact folds the journal into a new snapshot and starts an empty journal. */
  async compact(): Promise<void> {
    if (!this.fileLock.held) throw new StateError('compaction without the state lock', { code: 'E_STATE_UNLOCKED' });
    this.tables.log.expire();
    const doc = this.tables.document(this.idValue, SNAPSHOT_VERSION);
    const old = this.journalFile();
    const text = JSON.stringify(doc) + '\n';
    await writeFileAtomic(this.file, text);
    await this.journalFh?.close().catch(() => undefined);
    this.journalFh = undefined;
    this.snapRev = doc.rev;
    this.journalPos = 0;
    this.journalTorn = false;
    const st = await fsp.stat(this.file);
    this.snapIno = st.ino;
    this.snapSize = st.size;
    this.counters.bytesWritten += text.length;
    this.counters.compactions += 1;
    await fsp.rm(old, { force: true });
    await syncDir(this.dir);
  }

  /** removeStaleJournals deletes journals older than the snapshot (left by a crash during compaction). */
  private async removeStaleJournals(): Promise<void> {
    const names = await fsp.readdir(this.dir).catch(() => [] as string[]);
    for (const n of names) {
      const m = JOURNAL_RE.exec(n);
      if (m && Number(m[1]) < this.snapRev) await fsp.rm(path.join(this.dir, n), { force: true }).catch(() => undefined);
    }
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
    // one holder per process at a time (a control host serves several requests), then the directory's lock
    await this.holders.enter(this.dir, opts.timeoutMs === 0);
    try {
      await this.fileLock.acquire(opts);
      // a catch-up started before the lock was ours finishes first; then one that sees every commit
      await this.refreshing;
      await this.catchUp();
      await this.removeStaleJournals();
    } catch (err) {
      await this.fileLock.releaseLock();
      this.holders.leave();
      throw err;
    }
  }

  async unlock(): Promise<void> {
    await this.chain;
    await this.journalFh?.close().catch(() => undefined);
    this.journalFh = undefined;
    await this.fileLock.releaseLock();
    this.holders.leave();
  }

  stats(): StateStats {
    return { ...this.counters };
  }

  /** snapshot returns the committed state as a snapshot document (state migrate copies it). */
  snapshot(): SnapshotDoc {
    return this.tables.document(this.idValue, SNAPSHOT_VERSION);
  }

  /**
   * create writes a new state into a directory from a snapshot document (its id, records, events
   * and revision): refused when the directory already holds a state.
   */
  static async create(dir: string, doc: SnapshotDoc): Promise<void> {
    const abs = path.resolve(dir);
    try {
      await fsp.mkdir(abs, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StateError(`state directory ${abs} is not usable: ${errMessage(err)}`, { code: 'E_STATE_DIR', cause: err });
    }
    const file = path.join(abs, STATE_FILE);
    const exists = new StateError(`${abs} already holds a state (${STATE_FILE}): a state is copied only into a directory without one`, {
      code: 'E_STATE_EXISTS',
      hint: 'pick another directory, or move that one away first',
    });
    if (await fsp.stat(file).then(() => true, () => false)) throw exists;
    try {
      await writeFileAtomic(file, JSON.stringify({ ...doc, version: SNAPSHOT_VERSION }) + '\n', { exclusive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists;
      throw err;
    }
  }

  private startFollowing(): void {
    const kick = () => void this.refresh().catch(() => undefined);
    try {
      this.watcher = fsWatch(this.dir, { persistent: false }, kick);
      this.watcher.on('error', () => undefined);
    } catch {
      // no inotify: the poll below still follows
    }
    this.poll = setInterval(kick, 1000);
    this.poll.unref();
  }

  async close(): Promise<void> {
    this.watcher?.close();
    clearInterval(this.poll);
    await this.unlock();
  }
}
