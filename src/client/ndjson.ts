/**
 * readNdjson reads the answer of a long operation, one JSON object a line: `{"progress": …}` lines go
 * to onProgress, keep-alives `{}` reset the idle timer, any other object goes to onLine, and the
 * final `{"result": …}` resolves (`{"error": …}` rejects). The idle timer bounds each silence, not
 * the whole operation; an answer that ends before its result is an error.
 */
import type http from 'node:http';
import { FactoryError } from '../errors.js';
import { errorFromBody } from './answers.js';
import { seconds, type OpenedResponse } from './exchange.js';

/** NdjsonHandlers receive the lines of an NDJSON answer that are neither its result nor its error. */
export interface NdjsonHandlers {
  /** onProgress receives each `{"progress": ...}` line. */
  onProgress?: (line: string) => void;
  /** onLine receives every other object that is not a keep-alive, result or error. */
  onLine?: (obj: Record<string, unknown>) => void;
}

/** isNdjson tells whether an answer is a stream of lines (else it is one JSON document). */
export function isNdjson(res: http.IncomingMessage): boolean {
  const ct = String(res.headers['content-type'] ?? '');
  return /ndjson|jsonl|json-seq|stream/i.test(ct);
}

/** readNdjson reads opened until its result (or error, silence longer than idleMs, end, abort) and closes it. */
export function readNdjson<T>(opened: OpenedResponse, opts: NdjsonHandlers & { requestId: string; idleMs: number; signal?: AbortSignal }): Promise<T> {
  const { res, endpoint } = opened;
  const { requestId, idleMs } = opts;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    const done = (err: Error | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      opened.close();
      if (err) reject(err);
      else resolve(value as T);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => done(new FactoryError(`control host ${endpoint.url} sent nothing for ${seconds(idleMs)} (request ${requestId})`, { code: 'E_CONTROL_TIMEOUT', hint: 'the operation may still be running there; check `factory status`' })),
        idleMs,
      );
    };
    const onAbort = () => done(new FactoryError('interrupted', { code: 'E_ABORTED' }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    arm();
    const onLine = (line: string) => {
      if (!line.trim()) return;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        done(new FactoryError(`control host ${endpoint.url} sent a line that is not JSON: ${line.slice(0, 120)}`, { code: 'E_CONTROL_PROTOCOL' }));
        return;
      }
      if (obj === null || typeof obj !== 'object') return;
      if ('error' in obj) done(errorFromBody(obj, res.statusCode ?? 500, endpoint.url, requestId));
      else if ('result' in obj) done(undefined, obj.result as T);
      else if (typeof obj.progress === 'string') opts.onProgress?.(obj.progress);
      else if (Object.keys(obj).length > 0) opts.onLine?.(obj);
    };
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      arm();
      buf += chunk;
      let nl: number;
      while (!settled && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line);
      }
    });
    res.on('end', () => {
      if (buf) onLine(buf);
      done(new FactoryError(`control host ${endpoint.url} ended the answer before the operation finished (request ${requestId})`, { code: 'E_CONTROL_GONE', hint: 'check `factory status`' }));
    });
    res.on('error', (err) => done(new FactoryError(`control host ${endpoint.url}: connection lost: ${err.message} (request ${requestId})`, { code: 'E_CONTROL_GONE', cause: err })));
    res.on('aborted', () => done(new FactoryError(`control host ${endpoint.url}: connection lost (request ${requestId})`, { code: 'E_CONTROL_GONE' })));
  });
}
