/**
 * The event stream (GET /v1/events, server-sent events). Each event's `id:` is its revision, so a
 * client that reconnects with `Last-Event-ID` resumes exactly after the last one it got: the handler
 * subscribes (backend.watch) before it reads what was kept (backend.eventsSince), holds what arrives
 * meanwhile, and sends every revision once, in order. A revision older than what the log keeps gets
 * an explicit `event: reset` (the client re-lists, then follows from the revision it carries).
 *
 * A slow client never slows the host: when its socket has more than maxBuffer bytes queued it is
 * sent `event: drop` with the reason and closed.
 */
import type { ServerResponse } from 'node:http';
import type { EventRecord, EventTopic, StateBackend } from '../state/backend.js';

/** EventStreamOptions configure one stream. */
export interface EventStreamOptions {
  backend: StateBackend;
  res: ServerResponse;
  /** since is the revision after which events are sent. */
  since: number;
  /**
   * listing is set for a reader that resumes nothing (`factory events` without -f): it gets the kept
   * events after since even when some were dropped, instead of a reset.
   */
  listing?: boolean;
  topics?: ReadonlySet<EventTopic>;
  /** project limits the stream to one project's events. */
  project?: string;
  heartbeatMs: number;
  /** maxBuffer is how many bytes may wait in the socket's buffer before the client is dropped. */
  maxBuffer: number;
  /** maxHeld is how many new events may wait while a client catches up before it is dropped (default 10,000). */
  maxHeld?: number;
  headers?: Record<string, string>;
  /** onClose is told once when the stream ends, with the reason it was dropped (undefined: the client left). */
  onClose?: (dropped?: string) => void;
}

/** DEFAULT_SSE_HEARTBEAT_MS is the default time between heartbeat comments (env FACTORY_SSE_HEARTBEAT_MS). */
export const DEFAULT_SSE_HEARTBEAT_MS = 15_000;
/** DEFAULT_SSE_MAX_BUFFER is the default bound of a client's queued bytes (1 MiB). */
export const DEFAULT_SSE_MAX_BUFFER = 1 << 20;

/** eventFilter is the predicate of a stream's topics and project. */
export function eventFilter(topics?: ReadonlySet<EventTopic>, project?: string): (e: EventRecord) => boolean {
  return (e) => (!topics || topics.has(e.topic)) && (project === undefined || e.project === project);
}

/** streamEvents serves one event stream on res until the client leaves or is dropped. */
export function streamEvents(opts: EventStreamOptions): void {
  const o = { maxHeld: 10_000, ...opts };
  const { res, backend } = o;
  const filter = eventFilter(o.topics, o.project);
  let last = o.since;
  let live = false;
  let closed = false;
  const held: EventRecord[] = [];

  const close = (dropped?: string) => {
    if (closed) return;
    closed = true;
    unwatch();
    clearInterval(heartbeat);
    o.onClose?.(dropped);
    if (dropped) {
      res.end(`event: drop\ndata: ${JSON.stringify({ reason: dropped })}\n\n`);
      // a reader that does not even take the last bytes is cut off
      setTimeout(() => res.destroy(), 2000).unref();
    }
  };
  const write = (text: string) => {
    if (closed) return;
    res.write(text);
    if (res.writableLength > o.maxBuffer) close(`slow reader: more than ${o.maxBuffer} bytes queued`);
  };
  const send = (e: EventRecord) => {
    if (e.rev <= last) return; // already sent (or covered by what was read)
    last = e.rev;
    if (filter(e)) write(`id: ${e.rev}\ndata: ${JSON.stringify(e)}\n\n`);
  };

  const unwatch = backend.watch((e) => {
    if (live) send(e);
    else held.push(e);
  });
  res.on('close', () => close());
  const heartbeat = setInterval(() => write(`: heartbeat ${new Date().toISOString()}\n\n`), o.heartbeatMs);
  heartbeat.unref();

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...o.headers,
  });
  res.flushHeaders();
  const page = backend.eventsSince(o.since, filter);
  if (page.reset && !o.listing) {
    write(`event: reset\nid: ${page.latest}\ndata: ${JSON.stringify({ reason: `events after revision ${o.since} are no longer kept: list again, then follow from ${page.latest}`, since: o.since, oldest: page.oldest, latest: page.latest })}\n\n`);
    last = Math.max(last, page.latest);
    goLive();
    return;
  }
  void replay(page.events, page.latest);

  /** replay sends the kept events at the pace the client reads them (a long catch-up is not a slow reader). */
  async function replay(events: EventRecord[], latest: number): Promise<void> {
    for (const e of events) {
      if (closed) return;
      if (e.rev <= last) continue;
      last = e.rev;
      res.write(`id: ${e.rev}\ndata: ${JSON.stringify(e)}\n\n`);
      if (res.writableLength > REPLAY_CHUNK) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
      if (held.length > o.maxHeld) return close(`slow reader: more than ${o.maxHeld} new events arrived while it caught up`);
    }
    last = Math.max(last, latest);
    goLive();
  }

  function goLive(): void {
    for (const e of held) send(e);
    held.length = 0;
    live = true;
    // after the backlog: a client that only wanted what is kept (`factory events` without -f) stops here
    write(`: caught up at revision ${last}\n\n`);
  }
}

/** REPLAY_CHUNK is how many bytes a catch-up queues before it waits for the client to read them. */
const REPLAY_CHUNK = 64 * 1024;
