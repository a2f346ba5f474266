/**
 * followEvents reads a control host's event stream (`GET /v1/events`, server-sent events whose
 * `id:` is the state revision) on its own connection: no request timeout once the stream is open,
 * an idle timeout of about three heartbeats instead, and after a drop it reconnects with
 * `Last-Event-ID` (bounded exponential backoff). Revisions are delivered in increasing order, each
 * once: anything at or below the last delivered revision is dropped, and the next connection asks
 * for what came after it.
 */
import { FactoryError } from '../errors.js';
import { ApiError } from './answers.js';
import type { ApiClient } from './http.js';

/** StreamEvent is one event of the stream. */
export interface StreamEvent {
  /** revision is the state revision of the event (the SSE `id:`). */
  revision: number;
  /** type is the SSE `event:` field (`message` when absent). */
  type: string;
  /** data is the `data:` payload, parsed as JSON when it is JSON. */
  data: unknown;
}

/** ResetEvent says the asked revision is older than the log keeps: the caller should reload state. */
export interface ResetEvent {
  /** revision is where the stream continues from (the reset's `id:`), when the server sent one. */
  revision?: number;
  data: unknown;
}

/** FollowOptions configure followEvents. */
export interface FollowOptions {
  /** since is the revision already seen: events after it are delivered. */
  since?: number;
  /** topics filter the events (`topic=a,b`). */
  topics?: string[];
  /** onEvent receives each event once, in revision order; a returned promise is awaited before the next. */
  onEvent: (e: StreamEvent) => void | Promise<void>;
  /** onReset is called on `event: reset`; without it, the stream just continues. */
  onReset?: (e: ResetEvent) => void | Promise<void>;
  /** onReconnect is told about each drop and the wait before the next attempt. */
  onReconnect?: (info: { attempt: number; delayMs: number; error: Error }) => void;
  /** signal ends the stream (followEvents then resolves). */
  signal?: AbortSignal;
  /** follow false stops once caught up: at the end of the stream or its first heartbeat. Default true. */
  follow?: boolean;
  /** heartbeatMs is the server's heartbeat interval; the idle timeout is three of them. Default 15 s. */
  heartbeatMs?: number;
  /** idleTimeoutMs overrides the idle timeout (default 3 × heartbeatMs). */
  idleTimeoutMs?: number;
  /** minBackoffMs and maxBackoffMs bound the wait between reconnects (defaults 250 ms and 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * maxAttempts bounds consecutive failed reconnects after a drop (default: unbounded while
   * following). The first connection is not retried: when no endpoint answers it, followEvents rejects.
   */
  maxAttempts?: number;
}

/** FollowResult is where the stream stood when followEvents returned. */
export interface FollowResult {
  /** revision is the last delivered revision (or `since`). */
  revision: number | undefined;
}

/** SseField is one dispatched SSE message. */
interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** SseParser turns text chunks into messages and comment lines (per the EventSource spec). */
export class SseParser {
  private buf = '';
  private data: string[] = [];
  private event: string | undefined;
  private id: string | undefined;
  private sawField = false;

  /** push feeds a chunk; messages and comments come back in order. */
  push(chunk: string): ({ kind: 'message'; msg: SseMessage } | { kind: 'comment'; text: string })[] {
    this.buf += chunk;
    const out: ({ kind: 'message'; msg: SseMessage } | { kind: 'comment'; text: string })[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // a lone \r at the end may be the first half of \r\n: wait for more
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '') {
        if (this.sawField) out.push({ kind: 'message', msg: { id: this.id, event: this.event, data: this.data.join('\n') } });
        this.data = [];
        this.event = undefined;
        this.id = undefined;
        this.sawField = false;
        continue;
      }
      if (line.startsWith(':')) {
        out.push({ kind: 'comment', text: line.slice(1).trim() });
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      this.sawField = true;
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
      else if (field === 'id') this.id = value;
    }
    return out;
  }
}

/** CallbackError carries an error thrown by onEvent or onReset: it ends followEvents, no reconnect. */
class CallbackError extends Error {
  constructor(readonly inner: unknown) {
    super('callback failed');
  }
}

async function call<T>(fn: ((e: T) => void | Promise<void>) | undefined, e: T): Promise<void> {
  try {
    await fn?.(e);
  } catch (err) {
    throw new CallbackError(err);
  }
}

/** FATAL_STATUSES are answers a reconnect cannot fix. */
const FATAL_STATUSES = new Set([400, 401, 403, 404, 405, 406, 410, 415, 422]);

/** followEvents follows the event stream until signal aborts (or, with follow false, until caught up). */
export async function followEvents(client: ApiClient, opts: FollowOptions): Promise<FollowResult> {
  const follow = opts.follow ?? true;
  const idleMs = opts.idleTimeoutMs ?? 3 * (opts.heartbeatMs ?? 15_000);
  const minBackoff = opts.minBackoffMs ?? 250;
  const maxBackoff = opts.maxBackoffMs ?? 10_000;
  const maxAttempts = opts.maxAttempts ?? (follow ? Infinity : 5);
  let last = opts.since;
  let failures = 0;
  let connectedOnce = false;

  while (!opts.signal?.aborted) {
    const query = new URLSearchParams();
    if (last !== undefined) query.set('since', String(last));
    if (opts.topics?.length) query.set('topic', opts.topics.join(','));
    if (!follow) query.set('follow', 'false');
    const headers: Record<string, string> = { 'cache-control': 'no-cache' };
    if (last !== undefined) headers['last-event-id'] = String(last);
    let progressed = false;
    let caughtUp = false;
    let error: Error | undefined;
    try {
      const qs = query.toString();
      const opened = await client.open('GET', `/v1/events${qs ? `?${qs}` : ''}`, { accept: 'text/event-stream', headers, signal: opts.signal });
      connectedOnce = true;
      const { res } = opened;
      const parser = new SseParser();
      res.setEncoding('utf8');
      const iter = res[Symbol.asyncIterator]();
      let idleTimer: NodeJS.Timeout | undefined;
      let idleFired = false;
      const arm = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => {
          idleFired = true;
          opened.close();
        }, idleMs);
      };
      const onAbort = () => opened.close();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      arm();
      try {
        for (;;) {
          let step: IteratorResult<string>;
          try {
            step = (await iter.next()) as IteratorResult<string>;
          } catch (err) {
            if (opts.signal?.aborted) break;
            error = idleFired ? idleError(client, idleMs) : new FactoryError(`event stream from ${opened.endpoint.url} dropped: ${(err as Error).message}`, { code: 'E_CONTROL_GONE' });
            break;
          }
          if (step.done) {
            if (idleFired) error = idleError(client, idleMs);
            else if (!follow) caughtUp = true;
            else error = new FactoryError(`event stream from ${opened.endpoint.url} ended`, { code: 'E_CONTROL_GONE' });
            break;
          }
          arm();
          for (const item of parser.push(step.value)) {
            if (item.kind === 'comment') {
              // a heartbeat: the connection works, and the server has sent all it had
              progressed = true;
              if (!follow) caughtUp = true;
              continue;
            }
            const { msg } = item;
            const rev = msg.id !== undefined && /^\d+$/.test(msg.id) ? Number(msg.id) : undefined;
            const data = parseData(msg.data);
            if (msg.event === 'reset') {
              await call(opts.onReset, { revision: rev, data });
              if (rev !== undefined) last = rev;
              progressed = true;
              continue;
            }
            if (rev === undefined) continue; // not a revision event (e.g. a bare data line): nothing to resume from
            if (last !== undefined && rev <= last) continue; // a repeat after a reconnect
            await call(opts.onEvent, { revision: rev, type: msg.event ?? 'message', data });
            last = rev;
            progressed = true;
          }
          if (caughtUp) break;
        }
      } finally {
        clearTimeout(idleTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        opened.close();
      }
    } catch (err) {
      if (err instanceof CallbackError) throw err.inner;
      if (opts.signal?.aborted) break;
      if (err instanceof ApiError && FATAL_STATUSES.has(err.status)) throw err;
      const e = err as FactoryError;
      if (e.code === 'E_CONTROL_TLS' || e.code === 'E_CONTROL_TLS_PIN' || e.code === 'E_USAGE') throw err;
      // never reached at all: a wrong URL or a host that is down is reported, not waited out
      if (!connectedOnce) throw err;
      error = err as Error;
    }
    if (caughtUp || opts.signal?.aborted) break;
    if (!error) error = new FactoryError('event stream ended', { code: 'E_CONTROL_GONE' });
    if (progressed) failures = 0;
    failures++;
    if (failures > maxAttempts) throw error;
    const base = Math.min(maxBackoff, minBackoff * 2 ** Math.min(failures - 1, 20));
    const delayMs = Math.round(base / 2 + Math.random() * (base / 2));
    opts.onReconnect?.({ attempt: failures, delayMs, error });
    await sleep(delayMs, opts.signal);
  }
  return { revision: last };
}

function idleError(client: ApiClient, idleMs: number): FactoryError {
  return new FactoryError(`event stream from ${client.current} was silent for ${Math.round(idleMs / 1000)} s (no heartbeat)`, { code: 'E_CONTROL_TIMEOUT' });
}

function parseData(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
