/**
 * The state store: one JSON document (lowdb) in the state directory, written atomically
 * (temp file + fsync + rename, mode 0600) and guarded by a cross-process lock so that two
 * concurrent `apply`s never interleave. A corrupt file is refused, never overwritten; a copy of the
 * last good document is kept beside it as `state.json.bak`.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import lockfile from 'proper-lockfile';
import { StateError } from '../errors.js';
import { newStateId } from './state-id.js';
import { STATE_VERSION, type StateData } from './types.js';

/** STATE_FILE is the state document's name inside the state directory. */
export const STATE_FILE = 'state.json';

/** emptyState returns a fresh, empty state document. */
export function emptyState(): StateData {
  return { version: STATE_VERSION, agents: {}, tasks: {}, plans: {}, events: [] };
}

/** MAX_EVENTS bounds the event log kept in the state file (oldest dropped first). */
export const MAX_EVENTS = 500;

/**
 * AtomicJsonAdapter is a lowdb adapter that reads strictly (a corrupt file is an error that names
 * the file and keeps a copy) and writes atomically with mode 0600.
 */
export class AtomicJsonAdapter implements Adapter<StateData> {
  constructor(readonly file: string) {}

  /** read returns the document, null when the file does not exist, or throws StateError when corrupt. */
  async read(): Promise<StateData | null> {
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
      throw await this.corrupt(`not valid JSON (${errMessage(err)})`);
    }
    const problem = checkShape(data);
    if (problem) throw await this.corrupt(problem);
    return data as StateData;
  }

  /** write replaces the file atomically: temp file in the same folder, fsync, keep .bak, rename. */
  async write(data: StateData): Promise<void> {
    const dir = path.dirname(this.file);
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.${Date.now()}.${randomBytes(4).toString('hex')}.tmp`);
    const body = JSON.stringify(data, null, 1) + '\n';
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      await fh.writeFile(body, 'utf8');
      await fh.sync();
      await fh.close();
      fh = undefined;
      try {
        await fsp.copyFile(this.file, `${this.file}.bak`);
        await fsp.chmod(`${this.file}.bak`, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await fsp.rename(tmp, this.file);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw new StateError(`cannot write state file ${this.file}: ${errMessage(err)}`, {
        code: 'E_STATE_WRITE',
        hint: 'check that the state directory (--state) is writable and the disk is not full',
        cause: err,
      });
    }
  }

  private async corrupt(why: string): Promise<StateError> {
    const copy = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    let kept = '';
    try {
      await fsp.copyFile(this.file, copy);
      kept = `; a copy was kept at ${copy}`;
    } catch {
      kept = '';
    }
    const bak = `${this.file}.bak`;
    return new StateError(`state file ${this.file} is corrupt: ${why}${kept}`, {
      code: 'E_STATE_CORRUPT',
      hint: `factory will not overwrite it. Restore the last good copy (${bak}) if it exists, or move the file away to start from an empty state`,
    });
  }
}

function checkShape(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'expected a JSON object';
  const d = data as Record<string, unknown>;
  if (d.version !== STATE_VERSION) return `unsupported state version ${JSON.stringify(d.version)} (this factory reads version ${STATE_VERSION})`;
  for (const key of ['agents', 'tasks', 'plans'] as const) {
    const v = d[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return `'${key}' must be an object`;
  }
  if (!Array.isArray(d.events)) return `'events' must be an array`;
  return undefined;
}

function errMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}: ${e.message.replace(/^\w+: /, '')}` : String(e?.message ?? err);
}

/** LockOptions tunes how long a writer waits for another one to finish. */
export interface LockOptions {
  /** timeoutMs is how long to wait for the lock before failing (default 60 s, env FACTORY_LOCK_TIMEOUT in seconds). */
  timeoutMs?: number;
  /** purpose is shown to a waiting process, e.g. `plan apply`. */
  purpose?: string;
}

/** StateStore opens the state directory, reads the document and serializes writers with a lock. */
export class StateStore {
  readonly dir: string;
  readonly file: string;
  private readonly db: Low<StateData>;
  private release?: () => Promise<void>;
  private lastSave = 0;
  private saving: Promise<void> = Promise.resolve();

  private constructor(dir: string) {
    this.dir = dir;
    this.file = path.join(dir, STATE_FILE);
    this.db = new Low<StateData>(new AtomicJsonAdapter(this.file), emptyState());
  }

  /** open makes sure the state directory exists and is writable, then reads the document. */
  static async open(dir: string): Promise<StateStore> {
    const abs = path.resolve(dir);
    try {
      await fsp.mkdir(abs, { recursive: true, mode: 0o700 });
      const st = await fsp.stat(abs);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await fsp.access(abs, fsc.W_OK | fsc.X_OK);
      const probe = path.join(abs, `.probe-${process.pid}`);
      await fsp.writeFile(probe, '', { mode: 0o600 });
      await fsp.rm(probe, { force: true });
    } catch (err) {
      throw new StateError(`state directory ${abs} is not usable: ${errMessage(err)}`, {
        code: 'E_STATE_DIR',
        hint: 'pass a writable folder with --state (or FACTORY_STATE)',
        cause: err,
      });
    }
    const store = new StateStore(abs);
    await store.reload();
    return store;
  }

  /** data is the in-memory document; mutate it, then call save(). */
  get data(): StateData {
    return this.db.data;
  }

  /**
   * id is the state's id (`st-` + 12 hex): read from the document, or made on the first open of a
   * state that has none (kept across reloads, written with the next save). Agents' tasks carry it.
   */
  get id(): string {
    return (this.db.data.id ??= newStateId());
  }

  /** reload re-reads the file (after taking the lock, to see other writers' changes). */
  async reload(): Promise<void> {
    const id = this.db.data?.id;
    await this.db.read();
    if (!this.db.data) this.db.data = emptyState();
    // an id made before the first save is kept until the file has one
    if (!this.db.data.id && id) this.db.data.id = id;
    void this.id;
  }

  /** save writes the document atomically; the caller should hold the lock. */
  async save(): Promise<void> {
    this.lastSave = Date.now();
    // saves from parallel per-agent work are serialized, so the newest document is written last
    const run = async () => {
      if (this.db.data.events.length > MAX_EVENTS) this.db.data.events.splice(0, this.db.data.events.length - MAX_EVENTS);
      await this.db.write();
    };
    const next = this.saving.then(run, run);
    this.saving = next.catch(() => undefined);
    await next;
  }

  /**
   * saveThrottled writes the document unless it was written less than intervalMs ago; the caller
   * must end with save() so that the last changes are written.
   */
  async saveThrottled(intervalMs: number): Promise<void> {
    if (Date.now() - this.lastSave < intervalMs) return;
    await this.save();
  }

  /**
   * lock takes the state lock, waiting for another writer up to the timeout, then re-reads the
   * document. A lock left by a crashed process is taken over once it is stale (not refreshed for 10 s).
   */
  async lock(opts: LockOptions = {}): Promise<void> {
    if (this.release) return;
    const envTimeout = Number(process.env.FACTORY_LOCK_TIMEOUT);
    const timeoutMs = opts.timeoutMs ?? (Number.isFinite(envTimeout) && envTimeout >= 0 ? envTimeout * 1000 : 60_000);
    const lockPath = path.join(this.dir, 'state.lock');
    const ownerPath = path.join(this.dir, 'state.lock.owner');
    const deadline = Date.now() + timeoutMs;
    let waited = false;
    for (;;) {
      try {
        this.release = await lockfile.lock(this.dir, {
          lockfilePath: lockPath,
          stale: 10_000,
          update: 2_000,
          realpath: false,
          onCompromised: (err) => {
            process.stderr.write(`factory: warning: the state lock was compromised: ${err.message}\n`);
          },
        });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
          throw new StateError(`cannot lock state directory ${this.dir}: ${errMessage(err)}`, { cause: err });
        }
        if (Date.now() >= deadline) {
          const owner = await fsp.readFile(ownerPath, 'utf8').catch(() => '');
          throw new StateError(
            `state ${this.dir} is locked by another factory process${owner ? ` (${owner.trim()})` : ''}; gave up after ${Math.round(timeoutMs / 1000)} s`,
            { code: 'E_STATE_LOCKED', hint: 'wait for it to finish, or raise FACTORY_LOCK_TIMEOUT (seconds)' },
          );
        }
        if (!waited) {
          waited = true;
          const owner = await fsp.readFile(ownerPath, 'utf8').catch(() => '');
          process.stderr.write(`factory: waiting for the state lock${owner ? ` held by ${owner.trim()}` : ''}…\n`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await fsp
      .writeFile(ownerPath, `pid ${process.pid}, ${opts.purpose ?? 'factory'}, since ${new Date().toISOString()}\n`, { mode: 0o600 })
      .catch(() => undefined);
    try {
      await this.reload();
    } catch (err) {
      // a state that cannot be read must not leave the lock held (a control host would keep it for good)
      await this.unlock();
      throw err;
    }
  }

  /** unlock releases the lock if held; safe to call more than once. */
  async unlock(): Promise<void> {
    const release = this.release;
    if (!release) return;
    this.release = undefined;
    await fsp.rm(path.join(this.dir, 'state.lock.owner'), { force: true }).catch(() => undefined);
    await release().catch(() => undefined);
  }

  /** withLock runs fn holding the lock and always releases it. */
  async withLock<T>(fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
    await this.lock(opts);
    try {
      return await fn();
    } finally {
      await this.unlock();
    }
  }
}
