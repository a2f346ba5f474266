/**
 * One request and its answer on a connection connectEndpoint made: sendRequest writes the request
 * and resolves when the answer's headers arrive, readBody reads a whole body. Their timers name the
 * endpoint and the request id, so a host that does not answer is named in the error.
 */
import http from 'node:http';
import type net from 'node:net';
import { FactoryError } from '../errors.js';
import type { Endpoint } from './endpoint.js';

/** OpenedResponse is a response whose headers arrived, with the endpoint that sent it. */
export interface OpenedResponse {
  res: http.IncomingMessage;
  endpoint: Endpoint;
  /** close ends the connection. */
  close: () => void;
}

/** seconds formats a duration for messages (`30 s`, `2.5 s`). */
export function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/** sendRequest writes the request on a connected socket and resolves when the answer's headers arrive. */
export function sendRequest(
  socket: net.Socket,
  method: string,
  path: string,
  headers: Record<string, string>,
  payload: Buffer | undefined,
  deadline: number,
  ep: Endpoint,
  timeoutMs: number,
  requestId: string,
  signal?: AbortSignal,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request({ method, path, headers, createConnection: () => socket, setHost: false });
    const finish = (err: Error | undefined, res?: http.IncomingMessage) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        socket.destroy();
        reject(err);
      } else resolve(res!);
    };
    const onAbort = () => finish(new FactoryError('interrupted', { code: 'E_ABORTED' }));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () =>
        finish(
          new FactoryError(`control host ${ep.url} did not answer within ${seconds(timeoutMs)} (request ${requestId})`, {
            code: 'E_CONTROL_TIMEOUT',
            hint: 'raise --timeout, or check the host (`factory status` there)',
          }),
        ),
      Math.max(1, deadline - Date.now()),
    );
    req.on('response', (res) => finish(undefined, res));
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(new FactoryError(`control host ${ep.url}: connection lost before the answer: ${err.message} (request ${requestId})`, { code: 'E_CONTROL_GONE', cause: err })),
    );
    req.end(payload);
  });
}

/** readBody reads a whole answer; the timer names the endpoint when the body stalls. */
export function readBody(opened: OpenedResponse, leftMs: number, requestId: string, timeoutMs = leftMs): Promise<string> {
  const { res, endpoint } = opened;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      opened.close();
      reject(new FactoryError(`control host ${endpoint.url} did not answer within ${seconds(timeoutMs)} (request ${requestId})`, { code: 'E_CONTROL_TIMEOUT', hint: 'raise --timeout, or check the host' }));
    }, leftMs);
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      clearTimeout(timer);
      opened.close();
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    res.on('error', (err) => {
      clearTimeout(timer);
      reject(new FactoryError(`control host ${endpoint.url}: connection lost: ${err.message}`, { code: 'E_CONTROL_GONE', cause: err }));
    });
  });
}
