/**
 * HostEvents follows a control host's event stream (GET /v1/events on its unix socket, trusted there
 * without a token) from the state's first revision, so a test waits for what the host records (a
 * run scheduled, a run that succeeded) as it happens, instead of polling with a short fixed timeout.
 */
import http from 'node:http';
import path from 'node:path';
import { SseParser } from '../../src/client/sse.js';
import type { EventRecord } from '../../src/state/backend.js';

/** HostEvent is an event as the stream sends it (job events carry job, run and slot). */
export type HostEvent = EventRecord & { job?: string; run?: string; slot?: string };

/** Waiter is one until() call not answered yet. */
interface Waiter {
  what: string;
  match: (e: HostEvent) => boolean;
  fail?: (e: HostEvent) => boolean;
  resolve: (e: HostEvent) => void;
  reject: (err: Error) => void;
}

/** HostEvents holds the events of one host's stream received so far and answers until(). */
export class HostEvents {
  /** events are every event received so far, in revision order. */
  readonly events: HostEvent[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly req: http.ClientRequest;
  private ended?: string;

  /** constructor opens the stream of the host serving state, from revision 0. */
  constructor(state: string) {
    const parser = new SseParser();
    this.req = http.get({ socketPath: path.join(state, 'control.sock'), path: '/v1/events?since=0' }, (res) => {
      if (res.statusCode !== 200) return this.end(`GET /v1/events: ${res.statusCode}`);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const m of parser.push(chunk)) {
          if (m.kind !== 'message') continue;
          if (m.msg.event && m.msg.event !== 'message') return this.end(`the stream said ${m.msg.event}: ${m.msg.data}`);
          this.add(JSON.parse(m.msg.data) as HostEvent);
        }
      });
      res.on('end', () => this.end('the host closed the stream'));
      res.on('error', (err) => this.end(err.message));
    });
    this.req.on('error', (err) => this.end(err.message));
  }

  /**
   * until resolves with the first event (received already or to come) that matches, and rejects
   * when one matching fail comes first, when the stream ends, or after timeoutMs, saying what it
   * waited for and the last events received.
   */
  until(what: string, match: (e: HostEvent) => boolean, opts: { timeoutMs: number; fail?: (e: HostEvent) => boolean }): Promise<HostEvent> {
    for (const e of this.events) {
      if (opts.fail?.(e)) return Promise.reject(this.error(what, `${e.kind} came first: ${e.message}`));
      if (match(e)) return Promise.resolve(e);
    }
    if (this.ended) return Promise.reject(this.error(what, this.ended));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => w.reject(this.error(what, `not within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      const settle = <T>(fn: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        this.waiters.delete(w);
        fn(v);
      };
      const w: Waiter = { what, match, ...(opts.fail ? { fail: opts.fail } : {}), resolve: settle(resolve), reject: settle(reject) };
      this.waiters.add(w);
    });
  }

  /** close ends the stream. */
  close(): void {
    this.end('closed');
    this.req.destroy();
  }

  private add(e: HostEvent): void {
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.fail?.(e)) w.reject(this.error(w.what, `${e.kind} came first: ${e.message}`));
      else if (w.match(e)) w.resolve(e);
    }
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = why;
    for (const w of [...this.waiters]) w.reject(this.error(w.what, why));
  }

  private error(what: string, why: string): Error {
    const last = this.events.slice(-15).map((e) => `  ${e.rev} ${e.at} ${e.kind}: ${e.message}`);
    return new Error(`waiting for ${what}: ${why}; the last events:\n${last.join('\n')}`);
  }
}
