/**
 * JobRunner is the control host's scheduler of runs (Chronos' role): it wakes at each job's next
 * slot, accounts for every due slot (src/jobs/policy.ts), claims the slots to run in the state, and
 * only then starts their tasks on the agents; it follows the runs to their end (timeouts, retries
 * with backoff, dependents, history) and, after a restart, adopts what a previous host left.
 *
 * Exactly one run per slot: a run's id is `<plan>/<job>/<slot>`; the claim that records it (with
 * the agent and the task name it will have there) is committed, guarded on the run being new,
 * before the start is sent; the executor never starts a run task twice (`once`). A host killed
 * between the claim and the start, or between the start and its record, leaves a claimed run that
 * the next host finds: it asks the agent, adopts the task if it exists (running or ended), and
 * starts it only if it never did and its slot is not too late.
 */
import type { StateBackend } from '../state/backend.js';
import type { RunAgents } from './agents.js';
import { RunWriter } from './writer.js';
import { Dispatcher } from './dispatch.js';
import { RunWatcher } from './watch.js';

/** JobRunnerOptions configure a JobRunner. */
export interface JobRunnerOptions {
  state: StateBackend & { dir: string };
  agents: RunAgents;
  log: (line: string) => void;
  /** now is the clock (tests may pass their own). */
  now?: () => number;
  /** pollMs is how often the agents of running runs are asked how they are (default 500 ms). */
  pollMs?: number;
  /** maxSleepMs is the longest wait between passes (default 1 s). */
  maxSleepMs?: number;
  /** observe is told, for each run started, how late its start was sent and how late it ran (bench, metrics). */
  observe?: (m: { run: string; dispatchMs: number; startMs?: number }) => void;
}

/** jobsRunner holds the control host's runner (set by `factory control serve`; the API asks it to run a job now). */
export const jobsRunner: { current?: JobRunner } = {};

/** JobRunner runs the jobs of a state until stopped. */
export class JobRunner {
  /** startedAt is when this host began scheduling: slots before it came due while no host ran. */
  readonly startedAt: number;
  private readonly now: () => number;
  private readonly writer: RunWriter;
  private readonly dispatcher: Dispatcher;
  private readonly watcher: RunWatcher;
  private timer?: NodeJS.Timeout;
  private serial: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private recovered = false;
  /** passes counts the scheduling passes (for health). */
  passes = 0;

  constructor(private readonly opts: JobRunnerOptions) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.writer = new RunWriter(opts.state, opts.log);
    this.watcher = new RunWatcher({ ...opts, now: this.now, writer: this.writer });
    this.dispatcher = new Dispatcher({ ...opts, now: this.now, writer: this.writer, watcher: this.watcher, hostStartedAt: this.startedAt });
  }

  /** start recovers what a previous host left, then schedules passes until stop(). */
  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      const wait = await this.exclusive(() => this.pass()).catch((err: Error) => {
        this.opts.log(`jobs: pass failed: ${err.message}`);
        return 1000;
      });
      if (!this.stopped) this.timer = setTimeout(() => void loop(), Math.max(0, Math.min(wait, this.opts.maxSleepMs ?? 1000)));
    };
    void loop();
  }

  /** pass runs one scheduling pass now; returns how long to sleep until the next one is due. */
  async pass(): Promise<number> {
    this.passes += 1;
    if (!this.recovered) {
      await this.watcher.recover(this.dispatcher);
      this.recovered = true;
    }
    const nextSlot = await this.dispatcher.pass();
    const nextWatch = await this.watcher.pass(this.dispatcher);
    await this.writer.flush();
    const now = this.now();
    return Math.min(nextSlot - now, nextWatch - now);
  }

  /** runNow starts a run of a job now, outside its schedule (`factory jobs run`); concurrency applies unless force. */
  runNow(job: string, opts: { force?: boolean; by?: string } = {}): ReturnType<Dispatcher['runNow']> {
    return this.exclusive(() => this.dispatcher.runNow(job, opts));
  }

  /** settle waits for what the passes left in flight: starts, polls of the agents, and the writes of their answers. */
  async settle(): Promise<void> {
    await this.dispatcher.settle();
    await this.watcher.settle();
    await this.writer.flush();
  }

  /** stop ends the passes and waits for the one running and for every write; runs keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.serial.catch(() => undefined);
    await this.settle();
  }

  /** exclusive runs fn after every earlier pass or manual run: one of them at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.serial.then(fn, fn);
    this.serial = next.catch(() => undefined);
    return next;
  }
}
