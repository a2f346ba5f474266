/**
 * ApiClient talks to a control host's HTTP API (`/v1`): on its unix socket (`unix:/path/control.sock`,
 * same user, no TLS) or over HTTPS (`https://host:port`). It takes several endpoints and moves to
 * the next when one cannot be connected to, times out every call and names the endpoint that did
 * not answer, trusts a server by CA file or by a pinned SHA-256 fingerprint, and turns the server's
 * JSON errors into FactoryErrors.
 *
 * A connection is made by hand (net.connect / tls.connect) and handed to node:http only once it is
 * connected and its certificate checked: nothing of the request, the bearer token least of all,
 * is written to a server that failed the pin.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { FactoryError, SpecError, type SpecIssue } from '../errors.js';

/** DEFAULT_TIMEOUT_MS is the timeout of a call when none is given (`--timeout`, 30 s). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** DEFAULT_CONNECT_TIMEOUT_MS bounds one connection attempt, so a dead endpoint leaves time for the next. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Endpoint is one parsed control host address. */
export type Endpoint =
  | { kind: 'unix'; url: string; path: string }
  | { kind: 'https' | 'http'; url: string; host: string; port: number };

/** ApiClientOptions configure an ApiClient. */
export interface ApiClientOptions {
  /** endpoints are tried in turn: `https://host:port`, `http://host:port` (loopback tests) or `unix:/path`. */
  endpoints: string[];
  /** token is the bearer token (`fct_<12hex>_<secret>`), sent as `Authorization: Bearer`. */
  token?: string;
  /** timeoutMs bounds every call (and, for streams, the wait for the next line). */
  timeoutMs?: number;
  /** connectTimeoutMs bounds one connection attempt (capped by what is left of the call's timeout). */
  connectTimeoutMs?: number;
  /** ca is PEM text of the CA(s) to trust for HTTPS (in place of the system roots). */
  ca?: string | Buffer;
  /** fingerprints pin the server certificate by SHA-256 (hex, colons optional); any one may match. */
  fingerprints?: string[];
  /** userAgent is sent as User-Agent. */
  userAgent?: string;
}

/** CallOptions tune one call. */
export interface CallOptions {
  /** requestId is sent as x-request-id (default: a fresh UUID). */
  requestId?: string;
  /** timeoutMs overrides the client's timeout for this call. */
  timeoutMs?: number;
  /** headers are extra request headers. */
  headers?: Record<string, string>;
  /** signal aborts the call. */
  signal?: AbortSignal;
}

/** StreamOptions tune an NDJSON call. */
export interface StreamOptions extends CallOptions {
  /** onProgress receives each `{"progress": ...}` line. */
  onProgress?: (line: string) => void;
  /** onLine receives every other object that is not a keep-alive, result or error. */
  onLine?: (obj: Record<string, unknown>) => void;
  /** idleTimeoutMs is how long the stream may stay silent (keep-alives reset it); default: the call timeout. */
  idleTimeoutMs?: number;
}

/** OpenedResponse is a response whose headers arrived, with the endpoint that sent it. */
export interface OpenedResponse {
  res: http.IncomingMessage;
  endpoint: Endpoint;
  /** close ends the connection. */
  close: () => void;
}

/** ApiError is an error answer of a control host: its HTTP status, code, message and hint. */
export class ApiError extends FactoryError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    opts: { hint?: string; exitCode?: number; endpoint?: string; requestId?: string } = {},
  ) {
    super(message, { code, hint: opts.hint, exitCode: opts.exitCode ?? 1 });
    this.endpoint = opts.endpoint;
    this.requestId = opts.requestId;
  }
  readonly endpoint?: string;
  readonly requestId?: string;
}

/** ConnectError is a failure to reach an endpoint; `retriable` says whether the next endpoint may be tried. */
class ConnectError extends FactoryError {
  constructor(
    readonly endpoint: string,
    readonly reason: string,
    readonly retriable: boolean,
    opts: { code?: string; hint?: string; cause?: unknown } = {},
  ) {
    super(`control host ${endpoint}${reason.startsWith('did not answer') ? ' ' : ': '}${reason}`, { code: opts.code ?? 'E_CONTROL_UNREACHABLE', hint: opts.hint, cause: opts.cause });
  }
}

/** parseEndpoint parses one control URL; a bad one is a FactoryError naming it. */
export function parseEndpoint(url: string): Endpoint {
  const u = url.trim();
  if (u.startsWith('unix:')) {
    const p = u.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!p) throw new FactoryError(`bad control URL ${JSON.stringify(url)}: no socket path`, { code: 'E_USAGE' });
    return { kind: 'unix', url: `unix:${p}`, path: p };
  }
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new FactoryError(`bad control URL ${JSON.stringify(url)}`, { code: 'E_USAGE', hint: 'use https://host:port or unix:/path/to/control.sock' });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new FactoryError(`bad control URL ${JSON.stringify(url)}: scheme must be https, http or unix`, { code: 'E_USAGE' });
  }
  const kind = parsed.protocol === 'https:' ? 'https' : 'http';
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port ? Number(parsed.port) : kind === 'https' ? 443 : 80;
  return { kind, url: `${kind}://${parsed.host}`, host, port };
}

/** normalizeFingerprint turns `ab:cd…` or `ABCD…` into uppercase colon-separated hex (openssl's form). */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.trim().replace(/^sha256[:=]?/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new FactoryError(`bad fingerprint ${JSON.stringify(fp)}: want 64 hex digits of a SHA-256`, { code: 'E_USAGE' });
  return hex.match(/../g)!.join(':');
}

/** extraCaCerts reads NODE_EXTRA_CA_CERTS (Node adds it to the default store, but not to an explicit `ca`). */
function extraCaCerts(env: NodeJS.ProcessEnv = process.env): string[] {
  const f = env.NODE_EXTRA_CA_CERTS;
  if (!f) return [];
  try {
    return [fs.readFileSync(f, 'utf8')];
  } catch {
    return [];
  }
}

const RETRIABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNABORTED']);

/** describeConnectFailure is a short human reason for a socket error. */
function describeConnectFailure(code: string | undefined, message: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOENT':
      return 'no such socket';
    case 'EACCES':
      return 'permission denied on the socket';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    default:
      return code ? `${message}` : message;
  }
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/** ApiClient calls a control host's HTTP API over one of several endpoints. */
export class ApiClient {
  readonly endpoints: Endpoint[];
  readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly token?: string;
  private readonly ca?: (string | Buffer)[];
  private readonly fingerprints: string[];
  private readonly userAgent: string;
  /** preferred is the index of the endpoint that answered last: calls start there. */
  private preferred = 0;

  constructor(opts: ApiClientOptions) {
    if (!opts.endpoints.length) throw new FactoryError('no control host URL given', { code: 'E_USAGE', hint: 'pass --control URL or set a context' });
    this.endpoints = opts.endpoints.map(parseEndpoint);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.token = opts.token;
    this.ca = opts.ca !== undefined ? [opts.ca, ...extraCaCerts()] : undefined;
    this.fingerprints = (opts.fingerprints ?? []).map(normalizeFingerprint);
    this.userAgent = opts.userAgent ?? 'factory-cli';
    const plain = this.endpoints.find((e) => e.kind === 'http' && !isLoopback(e.host));
    if (plain && this.token) {
      throw new FactoryError(`refusing to send the token to ${plain.url} over plain HTTP`, { code: 'E_USAGE', hint: 'use https:// (the control host listens with TLS), or a unix: socket' });
    }
  }

  /** current is the URL of the endpoint calls start with (the one that answered last). */
  get current(): string {
    return this.endpoints[this.preferred]!.url;
  }

  /** getJson GETs path and resolves to the parsed JSON answer. */
  async getJson<T = unknown>(path: string, opts: CallOptions = {}): Promise<T> {
    return this.jsonCall<T>('GET', path, undefined, opts);
  }

  /** postJson POSTs body as JSON and resolves to the parsed JSON answer. */
  async postJson<T = unknown>(path: string, body: unknown, opts: CallOptions = {}): Promise<T> {
    return this.jsonCall<T>('POST', path, body, opts);
  }

  /** deleteJson DELETEs path and resolves to the parsed JSON answer (undefined when empty). */
  async deleteJson<T = unknown>(path: string, opts: CallOptions = {}): Promise<T> {
    return this.jsonCall<T>('DELETE', path, undefined, opts);
  }

  /**
   * stream runs a long operation answered as NDJSON: `{"progress": …}` lines go to onProgress,
   * keep-alives `{}` reset the idle timer, and the final `{"result": …}` resolves (`{"error": …}`
   * rejects). The call timeout bounds the wait for the answer's headers and each silence, not the
   * whole operation.
   */
  async stream<T = unknown>(method: string, path: string, body: unknown, opts: StreamOptions = {}): Promise<T> {
    const requestId = opts.requestId ?? randomUUID();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const idleMs = opts.idleTimeoutMs ?? timeoutMs;
    const opened = await this.open(method, path, { ...opts, requestId, body, accept: 'application/x-ndjson, application/json' });
    const { res, endpoint } = opened;
    if (!isNdjson(res)) {
      // a short operation may answer plain JSON
      const text = await readBody(opened, timeoutMs, requestId);
      return parseJsonAnswer<T>(text, endpoint, requestId);
    }
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

  /**
   * open sends a request and resolves once the answer's headers arrived (2xx only: an error answer
   * rejects with its ApiError). The call timeout bounds connecting and the wait for headers; what
   * follows has no timer: the caller reads the body (an event stream) at its own pace.
   */
  async open(
    method: string,
    path: string,
    opts: CallOptions & { body?: unknown; accept?: string } = {},
  ): Promise<OpenedResponse> {
    const requestId = opts.requestId ?? randomUUID();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const failures: ConnectError[] = [];
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.preferred + i) % n;
      const ep = this.endpoints[idx]!;
      const left = deadline - Date.now();
      if (left <= 0) break;
      let socket: net.Socket;
      try {
        socket = await this.connect(ep, Math.min(left, this.connectTimeoutMs), opts.signal);
      } catch (err) {
        if (err instanceof ConnectError && err.retriable) {
          failures.push(err);
          continue;
        }
        throw err;
      }
      this.preferred = idx;
      const headers: Record<string, string> = {
        host: ep.kind === 'unix' ? 'factory' : `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`,
        accept: opts.accept ?? 'application/json',
        'user-agent': this.userAgent,
        'x-request-id': requestId,
        'x-factory-deadline': String(deadline),
        connection: 'close',
        ...opts.headers,
      };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      if (payload) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(payload.length);
      }
      const res = await sendRequest(socket, method, path, headers, payload, deadline, ep, timeoutMs, requestId, opts.signal);
      const opened: OpenedResponse = { res, endpoint: ep, close: () => socket.destroy() };
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        const text = await readBody(opened, Math.max(1000, deadline - Date.now()), requestId).catch(() => '');
        opened.close();
        throw errorFromText(text, status, ep.url, requestId);
      }
      return opened;
    }
    if (failures.length === 0) {
      throw new FactoryError(`no control host answered within ${seconds(timeoutMs)}`, { code: 'E_CONTROL_TIMEOUT' });
    }
    if (failures.length === 1) throw failures[0]!;
    throw new FactoryError(`no control host answered: ${failures.map((f) => `${f.endpoint} (${f.reason})`).join(', ')}`, {
      code: 'E_CONTROL_UNREACHABLE',
      hint: failures.find((f) => f.hint)?.hint ?? 'check that `factory control serve` runs there and the URLs are right',
    });
  }

  private async jsonCall<T>(method: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    const requestId = opts.requestId ?? randomUUID();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const start = Date.now();
    const opened = await this.open(method, path, { ...opts, requestId, body, timeoutMs });
    const text = await readBody(opened, Math.max(1, timeoutMs - (Date.now() - start)), requestId, timeoutMs);
    return parseJsonAnswer<T>(text, opened.endpoint, requestId);
  }

  /** connect opens a connection to ep and, for HTTPS, checks the certificate before anything is sent. */
  private connect(ep: Endpoint, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
    return new Promise<net.Socket>((resolve, reject) => {
      let socket: net.Socket;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket?.destroy();
        reject(err);
      };
      const ok = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.removeListener('error', onError);
        resolve(socket);
      };
      const onAbort = () => fail(new FactoryError('interrupted', { code: 'E_ABORTED' }));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => fail(new ConnectError(ep.url, `did not answer within ${seconds(timeoutMs)} (while connecting)`, true, { code: 'E_CONTROL_TIMEOUT' })), timeoutMs);
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code;
        if (ep.kind === 'https' && (isTlsError(code) || !RETRIABLE_CODES.has(code ?? ''))) {
          fail(
            new ConnectError(ep.url, `TLS: ${err.message}`, false, {
              code: 'E_CONTROL_TLS',
              cause: err,
              hint: 'trust the host with --ca FILE (its CA) or --fingerprint SHA256 (its certificate), or set them in the context',
            }),
          );
          return;
        }
        const retriable = RETRIABLE_CODES.has(code ?? '');
        fail(
          new ConnectError(ep.url, describeConnectFailure(code, err.message), retriable, {
            cause: err,
            hint: code === 'ENOENT' ? 'no control host runs for this state directory: start one with `factory control serve`' : undefined,
          }),
        );
      };
      if (ep.kind === 'unix') {
        socket = net.connect({ path: ep.path });
        socket.once('connect', ok);
      } else if (ep.kind === 'http') {
        socket = net.connect({ host: ep.host, port: ep.port });
        socket.once('connect', ok);
      } else {
        const pinned = this.fingerprints.length > 0;
        const tlsSocket = tls.connect({
          host: ep.host,
          port: ep.port,
          servername: net.isIP(ep.host) ? undefined : ep.host,
          ALPNProtocols: ['http/1.1'],
          // a pin replaces the CA check: the certificate itself is what we trust
          rejectUnauthorized: !pinned,
          ...(this.ca && !pinned ? { ca: this.ca } : {}),
        });
        socket = tlsSocket;
        tlsSocket.once('secureConnect', () => {
          if (pinned) {
            const cert = tlsSocket.getPeerCertificate();
            const got = cert?.fingerprint256 ? cert.fingerprint256.toUpperCase() : '(no certificate)';
            if (!this.fingerprints.includes(got)) {
              fail(
                new ConnectError(ep.url, `certificate fingerprint mismatch: the server presented SHA-256 ${got}, but ${this.fingerprints.length > 1 ? `one of ${this.fingerprints.join(', ')}` : this.fingerprints[0]} is pinned; refusing to connect`, false, {
                  code: 'E_CONTROL_TLS_PIN',
                  hint: 'if the host has a new certificate, check its fingerprint there (`openssl x509 -noout -fingerprint -sha256 -in CERT`) and update --fingerprint or the context',
                }),
              );
              return;
            }
          }
          ok();
        });
      }
      socket.on('error', onError);
    });
  }
}

/** isLoopback tells whether a host is this machine (127.0.0.0/8, ::1, localhost). */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function isTlsError(code: string | undefined): boolean {
  if (!code) return false;
  return /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|ALTNAME|HANDSHAKE|ERR_TLS/.test(code);
}

/** sendRequest writes the request on a connected socket and resolves when the answer's headers arrive. */
function sendRequest(
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
function readBody(opened: OpenedResponse, leftMs: number, requestId: string, timeoutMs = leftMs): Promise<string> {
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

function isNdjson(res: http.IncomingMessage): boolean {
  const ct = String(res.headers['content-type'] ?? '');
  return /ndjson|jsonl|json-seq|stream/i.test(ct);
}

function parseJsonAnswer<T>(text: string, ep: Endpoint, requestId: string): T {
  if (!text.trim()) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new FactoryError(`control host ${ep.url} sent an answer that is not JSON (request ${requestId}): ${text.slice(0, 120)}`, { code: 'E_CONTROL_PROTOCOL' });
  }
}

/** errorFromText turns an error answer (JSON `{"error": …}` or anything else) into an error. */
function errorFromText(text: string, status: number, endpoint: string, requestId: string): FactoryError {
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object' && 'error' in body) return errorFromBody(body as Record<string, unknown>, status, endpoint, requestId);
  } catch {
    // not JSON: a proxy, or not a control host at all
  }
  const snippet = text.trim().replace(/\s+/g, ' ').slice(0, 160);
  return new ApiError(status, status === 401 ? 'E_UNAUTHORIZED' : status === 403 ? 'E_FORBIDDEN' : `E_HTTP_${status}`, `control host ${endpoint} answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`, { endpoint, requestId });
}

/** errorFromBody turns `{"error": {code, message, hint, issues?}}` into a FactoryError (SpecError for spec issues). */
export function errorFromBody(body: Record<string, unknown>, status: number, endpoint: string, requestId?: string): FactoryError {
  const e = (body.error ?? {}) as { code?: unknown; message?: unknown; hint?: unknown; issues?: unknown; exitCode?: unknown };
  if (Array.isArray(e.issues) && e.issues.length > 0) return new SpecError(e.issues as SpecIssue[]);
  const code = typeof e.code === 'string' ? e.code : `E_HTTP_${status}`;
  const message = typeof e.message === 'string' ? e.message : `control host ${endpoint} answered HTTP ${status}`;
  let hint = typeof e.hint === 'string' ? e.hint : undefined;
  if (!hint && status === 401) hint = 'pass a token with --token-file, FACTORY_TOKEN or the context';
  const exitCode = typeof e.exitCode === 'number' && Number.isInteger(e.exitCode) && e.exitCode > 0 && e.exitCode !== 2 ? e.exitCode : 1;
  return new ApiError(status, code, message, { hint, exitCode, endpoint, requestId });
}
