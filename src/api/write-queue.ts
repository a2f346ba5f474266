/**
 * WriteQueue runs the API's writes (restart, drain, apply, destroy, vm actions) one at a time, in
 * the order they arrived. A write whose client hung up or whose deadline passed while it waited is
 * dropped (logged), never run later unseen. Every write is recorded as an event `<op>-requested`
 * (or `…-failed`) with `by` = the caller, unless audit events are off.
 */
import type { FastifyRequest } from 'fastify';
import type { EventInput, StateBackend } from '../state/backend.js';
import { callerOf } from './auth.js';
import { checkDeadline } from './deadline.js';
import { ApiError } from './errors.js';

/** WriteQueueOptions configure a WriteQueue. */
export interface WriteQueueOptions {
  backend: StateBackend;
  log: (line: string) => void;
  /** auditEvents records every write as an event by its caller (default true). */
  auditEvents?: boolean;
}

/** WriteQueue serializes the writes of one app and records who asked for each. */
export class WriteQueue {
  private queue: Promise<unknown> = Promise.resolve();
  /** running says which write runs now (told to a write that has to wait for it). */
  private running: string | undefined;

  constructor(private readonly opts: WriteQueueOptions) {}

  /** write runs fn in the queue and records it as an event by the caller (`-failed` when it threw). */
  async write<T>(req: FastifyRequest, what: string, event: Omit<EventInput, 'by' | 'message'>, fn: () => Promise<T>, progress?: (line: string) => void): Promise<T> {
    const by = callerOf(req).id;
    try {
      const out = await this.serialized(req, what, fn, progress);
      await this.record({ ...event, message: `${what} by ${by}`, by });
      return out;
    } catch (err) {
      if ((err as ApiError).code !== 'E_CLIENT_GONE' && (err as ApiError).code !== 'E_DEADLINE') {
        await this.record({ ...event, kind: `${event.kind}-failed`, message: `${what} by ${by} failed: ${(err as Error).message}`, by });
      }
      throw err;
    }
  }

  /** serialized runs fn after the writes before it, unless its client left or its deadline passed meanwhile. */
  private serialized<T>(req: FastifyRequest, what: string, fn: () => Promise<T>, progress?: (line: string) => void): Promise<T> {
    const { log } = this.opts;
    if (this.running) progress?.(`waiting for the write before it to finish: ${this.running}`);
    const run = async () => {
      // let what already arrived on the connection be seen first: a host resumed from SIGSTOP reads the
      // request and its client's hang-up in one go, and the hang-up must win
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (req.clientGone || req.raw.socket?.destroyed || req.raw.socket?.readableEnded) throw new ApiError(499, 'E_CLIENT_GONE', 'the client went away before it started; not run');
      checkDeadline(req);
      this.running = what;
      const t0 = performance.now();
      try {
        const out = await fn();
        log(`${req.id} served ${what} for ${callerOf(req).id} in ${Math.round(performance.now() - t0)} ms`);
        return out;
      } finally {
        this.running = undefined;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next.catch((err) => {
      if ((err as ApiError).code === 'E_CLIENT_GONE' || (err as ApiError).code === 'E_DEADLINE') log(`${req.id} dropped ${what}: ${(err as Error).message}`);
      throw err;
    });
  }

  /** record commits an audit event for a write (who did what); its failure is logged, never the request's. */
  private async record(e: EventInput): Promise<void> {
    const { backend, log } = this.opts;
    if (this.opts.auditEvents === false) return;
    try {
      await backend.lock({ purpose: 'api event', timeoutMs: 10_000 });
      try {
        await backend.commit({ ops: [], events: [e] });
      } finally {
        await backend.unlock();
      }
    } catch (err) {
      log(`cannot record event ${e.kind}: ${(err as Error).message}`);
    }
  }
}
