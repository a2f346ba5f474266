/**
 * Supervisor runs the control host's supervision passes (reconcileRecorded: the plans as last
 * applied) every interval. A pass never waits for the state lock: while a write holds it, the pass
 * is skipped and the next one comes an interval later. Passes never overlap. A new leader on etcd
 * starts it with its takeover pass (takeover.ts), which runs at once and before any other.
 */
import { reconcileRecorded, type ReconcileResult } from './reconcile.js';

/** SupervisorOptions configure the passes. */
export interface SupervisorOptions {
  stateDir: string;
  intervalMs: number;
  log: (line: string) => void;
  /** observe receives each pass's duration (seconds) and whether it succeeded (for /metrics). */
  observe?: (seconds: number, ok: boolean) => void;
}

/** Supervisor schedules supervision passes until stopped. */
export class Supervisor {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;
  /** passes counts the passes run (skipped ones included). */
  passes = 0;

  constructor(private readonly opts: SupervisorOptions) {}

  /** supervising says whether passes run every interval (--reconcile-interval above 0). */
  get supervising(): boolean {
    return this.opts.intervalMs > 0;
  }

  /**
   * start schedules a pass every interval. first, when given, runs at once and before them (a new
   * leader's takeover pass): the first interval counts from its end, and stop() waits for it.
   */
  start(first?: () => Promise<unknown>): void {
    const tick = async () => {
      this.running = this.pass();
      await this.running;
      this.running = undefined;
      if (!this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs);
    };
    const schedule = () => {
      if (this.supervising && !this.stopped) this.timer = setTimeout(tick, this.opts.intervalMs);
    };
    if (!first) return schedule();
    this.running = first()
      .catch((err: Error) => this.opts.log(`takeover pass failed: ${err.message}`))
      .finally(() => {
        this.running = undefined;
        schedule();
      });
  }

  /**
   * pass runs one supervision pass now and logs what it did. With lockTimeoutMs it waits that long
   * for the state lock rather than skipping the pass (a takeover's pass must not be skipped).
   */
  async pass(opts: { lockTimeoutMs?: number } = {}): Promise<ReconcileResult | undefined> {
    const { log } = this.opts;
    const t0 = performance.now();
    this.passes += 1;
    try {
      const r = await reconcileRecorded({ stateDir: this.opts.stateDir, lockTimeoutMs: opts.lockTimeoutMs, progress: (line) => log(`reconcile: ${line}`) });
      if (r.skipped) log(`reconcile skipped: ${r.skipped}`);
      for (const p of r.passes) {
        if (p.error) continue; // said by the progress line
        if (p.results.length > 0) log(`reconcile: ${p.plans.join(', ')}: ${p.results.filter((x) => x.ok).length} of ${p.results.length} change(s) done`);
      }
      this.opts.observe?.((performance.now() - t0) / 1000, r.passes.every((p) => !p.error));
      return r;
    } catch (err) {
      log(`reconcile failed: ${(err as Error).message}`);
      this.opts.observe?.((performance.now() - t0) / 1000, false);
      return undefined;
    }
  }

  /** stop ends the schedule and waits for a running pass. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
