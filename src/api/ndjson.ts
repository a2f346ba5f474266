/**
 * NDJSON answers of long operations (apply, destroy, logs): the headers go at once, then one JSON
 * object a line: `{"progress": "…"}` as the operation reports, `{}` every keepAliveMs so the client
 * knows the host is alive, then `{"result": …}` or `{"error": …}`. A client that hangs up aborts the
 * operation's signal.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorAnswer } from './errors.js';
import type { ApiMetrics } from './metrics.js';

/** NDJSON_KEEPALIVE_MS is the time between `{}` lines of a long NDJSON answer. */
export const NDJSON_KEEPALIVE_MS = 5_000;

/** NdjsonRun is the operation an NDJSON answer streams: it reports progress and watches the signal. */
export type NdjsonRun = (progress: (line: string) => void, signal: AbortSignal) => Promise<unknown>;

/** answerNdjson answers req with a stream of lines: progress, a keep-alive `{}` every keepAliveMs, then the result or the error. */
export async function answerNdjson(req: FastifyRequest, reply: FastifyReply, run: NdjsonRun, opts: { keepAliveMs: number; metrics: ApiMetrics }): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  const started = process.hrtime.bigint();
  const ac = new AbortController();
  res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': req.id });
  res.flushHeaders();
  const line = (v: unknown) => {
    if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(v)}\n`);
  };
  res.on('close', () => {
    if (!res.writableEnded) ac.abort();
  });
  const keepAlive = setInterval(() => line({}), opts.keepAliveMs);
  try {
    line({ result: await run((p) => line({ progress: p }), ac.signal) });
  } catch (err) {
    line(errorAnswer(err).body);
  } finally {
    clearInterval(keepAlive);
    if (!res.writableEnded) res.end();
    opts.metrics.requestDuration.observe({ method: req.method, route: req.routeOptions.url ?? '', status: '200' }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}
