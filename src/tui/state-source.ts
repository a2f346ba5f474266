/**
 * Where the dashboard's state comes from. StateFileWatcher follows the state file: the store
 * replaces it atomically (temp file + rename), so it watches the folder, debounces bursts of
 * changes, re-reads the whole document, and checks size/mtime/inode every few seconds in case a
 * change notification was missed. MemoryStateSource serves tests and the benchmark.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { STATE_FILE, emptyState } from '../state/store.js';
import type { StateData } from '../state/types.js';

/** StateSnapshot is one version of the state as the dashboard received it. */
export interface StateSnapshot {
  data: StateData;
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

/** MemoryStateSource is a StateSource whose documents are pushed by hand (tests, benchmark). */
export class MemoryStateSource implements StateSource {
  private snap: StateSnapshot;
  private readonly listeners = new Set<(s: StateSnapshot) => void>();

  constructor(data: StateData = emptyState(), now = Date.now()) {
    this.snap = { data, version: 1, readAt: now };
  }

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

  /** push publishes a new document (or an error that keeps the document). */
  push(data: StateData, opts: { error?: string; now?: number } = {}): void {
    this.snap = { data, version: this.snap.version + 1, readAt: opts.now ?? Date.now(), ...(opts.error ? { error: opts.error } : {}) };
    for (const l of this.listeners) l(this.snap);
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
  const data = JSON.parse(text) as StateData;
  if (typeof data !== 'object' || data === null || typeof data.agents !== 'object' || typeof data.tasks !== 'object' || !Array.isArray(data.events)) {
    throw new Error(`${file} is not a factory state document`);
  }
  data.plans ??= {};
  return data;
}

/** StateFileWatcher follows `<dir>/state.json` and publishes each new version. */
export class StateFileWatcher implements StateSource {
  readonly file: string;
  private snap: StateSnapshot;
  private readonly listeners = new Set<(s: StateSnapshot) => void>();
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
    this.file = path.join(dir, STATE_FILE);
    this.snap = { data: emptyState(), version: 0, readAt: Date.now() };
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
        if (name && name !== STATE_FILE) return;
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
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
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
          const data = await readStateFile(this.file);
          this.signature = sig;
          this.publish({ data, version: this.snap.version + 1, readAt: Date.now() });
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
    this.snap = s;
    for (const l of this.listeners) l(s);
  }
}
