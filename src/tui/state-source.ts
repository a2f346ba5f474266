/**
 * Where the dashboard's state comes from. StateFileWatcher follows the state file: the store
 * replaces it atomically (temp file + rename), so it watches the folder, debounces bursts of
 * changes, and checks size/mtime/inode every few seconds in case a change notification was missed.
 * Each new version is read, parsed and turned into the dashboard's compact model in a worker
 * thread (state-worker.ts), so the UI thread never parses the document nor holds it: it receives
 * ~12 MB of columns for 10k agents and 100k tasks. MemoryStateSource serves tests and the benchmark.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { STATE_FILE } from '../state/file-backend.js';
import { JOURNAL_RE } from '../state/journal.js';
import { applyJournalSync, hasJournal } from '../state/read-sync.js';
import { emptyState } from './empty-state.js';
import type { StateData } from '../state/types.js';
import { deploymentsOf, NO_DEPLOYMENTS, type DeploymentTableRecords, type DeploymentView } from './deployments-model.js';
import { jobsOfTables, NO_JOBS, type JobsData, type JobTableRecords } from './jobs-model.js';
import { computeCore, parseStateText, type DeclaredAgent, type ModelCore } from './model-core.js';
import { coreFromStateFile } from './state-reader.js';
import type { StateWorkerInput } from './state-worker.js';

/** StateSnapshot is one version of the state as the dashboard received it: the document (in-memory sources) or its compact model (the file watcher). */
export interface StateSnapshot {
  data?: StateData;
  /** core is the compact model, computed off the UI thread with the watcher's declared agents. */
  core?: ModelCore;
  /** jobs are the scheduled jobs and their kept runs, of the same version (absent: none). */
  jobs?: JobsData;
  /** deployments are the state's deployments, newest first, of the same version (absent: none). */
  deployments?: readonly DeploymentView[];
  /** version increases with every new document. */
  version: number;
  /** readAt is when it was read (ms since the epoch). */
  readAt: number;
  /** error says why the latest read failed (the previous document is kept). */
  error?: string;
}

/** StateSource hands the dashboard the current state and tells it about every new version. */
export interface StateSource {
  current(): StateSnapshot;
  subscribe(listener: (s: StateSnapshot) => void): () => void;
  close(): void;
}

/**
 * SnapshotPublisher is what every StateSource shares: the latest snapshot and the listeners told
 * of each new one.
 */
export abstract class SnapshotPublisher implements StateSource {
  protected readonly listeners = new Set<(s: StateSnapshot) => void>();

  constructor(protected snap: StateSnapshot) {}

  /** current returns the latest snapshot. */
  current(): StateSnapshot {
    return this.snap;
  }

  /** subscribe registers a listener for new snapshots and returns its unsubscribe function. */
  subscribe(listener: (s: StateSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** emit makes s the latest snapshot and tells every listener. */
  protected emit(s: StateSnapshot): void {
    this.snap = s;
    for (const l of this.listeners) l(s);
  }

  abstract close(): void;
}

/** MemoryDocument is a state document with its job and deployment tables, if any. */
export type MemoryDocument = StateData & JobTableRecords & DeploymentTableRecords;

/** MemoryStateSource is a StateSource whose documents (with their job and deployment tables, if any) are pushed by hand (tests, benchmark). */
export class MemoryStateSource extends SnapshotPublisher {
  constructor(data: MemoryDocument = emptyState(), now = Date.now()) {
    super({ data, jobs: jobsOfTables(data), deployments: deploymentsOf(Object.values(data.deployments ?? {})), version: 1, readAt: now });
  }

  /** push publishes a new document (or an error that keeps the document). */
  push(data: MemoryDocument, opts: { error?: string; now?: number } = {}): void {
    const deployments = deploymentsOf(Object.values(data.deployments ?? {}));
    this.emit({ data, jobs: jobsOfTables(data), deployments, version: this.snap.version + 1, readAt: opts.now ?? Date.now(), ...(opts.error ? { error: opts.error } : {}) });
  }

  /** close forgets the listeners. */
  close(): void {
    this.listeners.clear();
  }
}

/** StateFileWatcherOptions tune how quickly changes are picked up. */
export interface StateFileWatcherOptions {
  /** debounceMs waits for a burst of writes to settle before reading (default 100). */
  debounceMs?: number;
  /** pollMs is the period of the size/mtime check that catches missed notifications (default 2000). */
  pollMs?: number;
  /** declared are the inventory's agents, shown even before the state knows them. */
  declared?: DeclaredAgent[];
  /** inThread reads in the UI thread instead of a worker (the fallback when a worker cannot start). */
  inThread?: boolean;
}

/** readStateFile reads and parses a state file; a missing file is an empty state. */
export async function readStateFile(file: string): Promise<StateData> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw err;
  }
  return applyJournalSync(path.dirname(file), parseStateText(text, file));
}

/**
 * workerScript is how to start the state worker: the compiled file, or under a TypeScript loader
 * (tsx, vitest) the source through tsx. The worker is dist/tui/state-worker.js; it is named from the
 * parent folder so that this module finds it both as dist/tui/state-source.js and bundled into
 * dist/chunks/ (scripts/bundle-cli.mjs).
 */
function workerScript(): { script: string | URL; eval: boolean } {
  const self = import.meta.url;
  if (!/\.tsx?$/.test(self)) return { script: new URL('../tui/state-worker.js', self), eval: false };
  const entry = new URL('../tui/state-worker.ts', self).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return { script: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, eval: true };
}

/**
 * readStateCore reads a state file into a compact model in a worker thread (a missing file is an
 * empty state). If the worker cannot run at all it reads in this thread instead.
 */
export async function readStateCore(file: string, declared: DeclaredAgent[] = [], opts: { inThread?: boolean } = {}): Promise<ModelCore> {
  if (!opts.inThread) {
    const viaWorker = await new Promise<{ core?: ModelCore; error?: string } | undefined>((resolve) => {
      let worker: Worker;
      try {
        const { script, eval: isEval } = workerScript();
        // stdout/stderr: true keeps anything the worker prints off the dashboard's screen (it is dropped)
        worker = new Worker(script, { eval: isEval, workerData: { kind: 'factory-state-worker', file, declared } satisfies StateWorkerInput, stdout: true, stderr: true });
        worker.stdout.resume();
        worker.stderr.resume();
      } catch {
        resolve(undefined);
        return;
      }
      // settle when the thread has exited, so its memory is given back before the next read starts
      let result: { core?: ModelCore; error?: string } | undefined;
      worker.once('message', (m: { ok: boolean; core?: ModelCore; error?: string }) => {
        result = m.ok ? { core: m.core } : { error: m.error };
        void worker.terminate();
      });
      worker.once('error', () => undefined);
      worker.once('exit', () => resolve(result));
    });
    if (viaWorker?.core) return viaWorker.core;
    if (viaWorker?.error !== undefined) throw new Error(viaWorker.error);
  }
  return coreFromStateFile(file, declared);
}

/** StateFileWatcher follows `<dir>/state.json` and publishes each new version. */
export class StateFileWatcher extends SnapshotPublisher {
  readonly file: string;
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
  private poll?: NodeJS.Timeout;
  private signature = '';
  private reading = false;
  private again = false;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly opts: StateFileWatcherOptions,
  ) {
    super({ core: computeCore(emptyState(), opts.declared), jobs: NO_JOBS, deployments: NO_DEPLOYMENTS, version: 0, readAt: Date.now() });
    this.file = path.join(dir, STATE_FILE);
  }

  /** open reads the state once and starts following it. */
  static async open(dir: string, opts: StateFileWatcherOptions = {}): Promise<StateFileWatcher> {
    const w = new StateFileWatcher(path.resolve(dir), opts);
    await w.read();
    w.startWatch();
    w.poll = setInterval(() => void w.checkSignature(), opts.pollMs ?? 2000);
    w.poll.unref();
    return w;
  }


  /** close stops watching. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.debounce) clearTimeout(this.debounce);
    if (this.poll) clearInterval(this.poll);
    this.listeners.clear();
  }

  private startWatch(): void {
    if (this.watcher || this.closed) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        if (name && name !== STATE_FILE && !JOURNAL_RE.test(name)) return;
        this.schedule();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined; // the folder does not exist yet: the poll picks the file up
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.read(), this.opts.debounceMs ?? 100);
  }

  private async checkSignature(): Promise<void> {
    this.startWatch();
    const sig = await this.statSignature();
    if (sig !== this.signature) this.schedule();
  }

  private async statSignature(): Promise<string> {
    try {
      const st = await stat(this.file);
      const j = hasJournal(this.dir) ? await journalSignature(this.dir) : '';
      return `${st.ino}:${st.size}:${st.mtimeMs}:${j}`;
    } catch {
      return 'missing';
    }
  }

  private async read(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        const sig = await this.statSignature();
        if (sig === this.signature && this.snap.version > 0 && !this.snap.error) continue;
        try {
          const core = await readStateCore(this.file, this.opts.declared, { inThread: this.opts.inThread });
          this.signature = sig;
          this.publish({ core, jobs: core.jobs, deployments: core.deployments, version: this.snap.version + 1, readAt: Date.now() });
        } catch (err) {
          this.publish({ ...this.snap, version: this.snap.version + 1, readAt: Date.now(), error: `cannot read ${this.file}: ${(err as Error).message}` });
        }
      } while (this.again && !this.closed);
    } finally {
      this.reading = false;
    }
  }

  private publish(s: StateSnapshot): void {
    if (this.closed) return;
    this.emit(s);
  }
}

/** journalSignature is the size and mtime of each journal of a state directory (a commit changes it). */
async function journalSignature(dir: string): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => JOURNAL_RE.test(n)).sort();
  const parts: string[] = [];
  for (const n of names) {
    const st = await stat(path.join(dir, n)).catch(() => undefined);
    if (st) parts.push(`${n}:${st.size}:${st.mtimeMs}`);
  }
  return parts.join(',');
}
