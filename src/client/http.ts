/**
 * ApiClient talks to a control host's HTTP API (`/v1`): on its unix socket (`unix:/path/control.sock`,
 * same user, no TLS) or over HTTPS (`https://host:port`). It takes several endpoints and moves to
 * the next when one cannot be connected to, times out every call and names the endpoint that did
 * not answer, trusts a server by CA file or by a pinned SHA-256 fingerprint, and turns the server's
 * JSON errors into FactoryErrors.
 *
 * Its parts: endpoint.ts parses the addresses and pins, connect.ts makes a connection (the
 * certificate checked before a byte is sent), exchange.ts sends one request on it and reads the
 * answer, answers.ts turns what came back into a value or an error, ndjson.ts reads the line stream
 * of a long operation.
 */
import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import { FactoryError } from '../errors.js';
import { errorFromText, parseJsonAnswer } from './answers.js';
import { ConnectError, connectEndpoint, extraCaCerts } from './connect.js';
import { isLoopback, normalizeFingerprint, parseEndpoint, type Endpoint } from './endpoint.js';
import { readBody, seconds, sendRequest, type OpenedResponse } from './exchange.js';
import { isNdjson, readNdjson, type NdjsonHandlers } from './ndjson.js';

/** DEFAULT_TIMEOUT_MS is the timeout of a call when none is given (`--timeout`, 30 s). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** DEFAULT_CONNECT_TIMEOUT_MS bounds one connection attempt, so a dead endpoint leaves time for the next. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** NOT_LEADER_PAUSE_MS is the wait before asking the hosts again when none of them leads yet. */
const NOT_LEADER_PAUSE_MS = 250;
/** MAX_NOT_LEADER_HOPS bounds how often one call is sent on after E_NOT_LEADER (about 10 s of an election). */
const MAX_NOT_LEADER_HOPS = 40;

/** leaderOf reads the leader's URL from an E_NOT_LEADER answer. */
function leaderOf(text: string): string | undefined {
  try {
    const leader = (JSON.parse(text) as { error?: { leader?: unknown } }).error?.leader;
    return typeof leader === 'string' ? leader : undefined;
  } catch {
    return undefined;
  }
}

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
export interface StreamOptions extends CallOptions, NdjsonHandlers {
  /** idleTimeoutMs is how long the stream may stay silent (keep-alives reset it); default: the call timeout. */
  idleTimeoutMs?: number;
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
    return readNdjson<T>(opened, { requestId, idleMs, signal: opts.signal, onProgress: opts.onProgress, onLine: opts.onLine });
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
    // a follower control host (HA on etcd) refuses a write with E_NOT_LEADER and the leader's URL: go
    // there next when it is one of ours, else to the next endpoint; nothing ran, so sending it again is safe
    let notLeader: FactoryError | undefined;
    let next: number | undefined;
    let hops = 0;
    for (let i = 0; i < n || next !== undefined; i++) {
      const idx = next ?? (this.preferred + i) % n;
      if (next !== undefined) i--;
      next = undefined;
      const ep = this.endpoints[idx]!;
      const left = deadline - Date.now();
      if (left <= 0) break;
      let socket: net.Socket;
      try {
        socket = await connectEndpoint(ep, { ca: this.ca, fingerprints: this.fingerprints }, Math.min(left, this.connectTimeoutMs), opts.signal);
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
        const err = errorFromText(text, status, ep.url, requestId);
        if (err.code === 'E_NOT_LEADER' && hops++ < MAX_NOT_LEADER_HOPS) {
          notLeader = err;
          const at = this.endpointOf(leaderOf(text));
          if (at !== undefined && at !== idx) next = at;
          else if (i === n - 1 && deadline - Date.now() > NOT_LEADER_PAUSE_MS) {
            // every host is a follower (an election under way): ask them all again shortly
            await new Promise((r) => setTimeout(r, NOT_LEADER_PAUSE_MS));
            i = -1;
          }
          continue;
        }
        throw err;
      }
      return opened;
    }
    if (notLeader) throw notLeader;
    if (failures.length === 0) {
      throw new FactoryError(`no control host answered within ${seconds(timeoutMs)}`, { code: 'E_CONTROL_TIMEOUT' });
    }
    if (failures.length === 1) throw failures[0]!;
    throw new FactoryError(`no control host answered: ${failures.map((f) => `${f.endpoint} (${f.reason})`).join(', ')}`, {
      code: 'E_CONTROL_UNREACHABLE',
      hint: failures.find((f) => f.hint)?.hint ?? 'check that `factory control serve` runs there and the URLs are right',
    });
  }

  /** endpointOf is the index of a URL among the endpoints (undefined: not one of them). */
  private endpointOf(url: string | undefined): number | undefined {
    if (!url) return undefined;
    try {
      const want = parseEndpoint(url).url;
      const at = this.endpoints.findIndex((e) => e.url === want);
      return at >= 0 ? at : undefined;
    } catch {
      return undefined;
    }
  }

  private async jsonCall<T>(method: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
    const requestId = opts.requestId ?? randomUUID();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const start = Date.now();
    const opened = await this.open(method, path, { ...opts, requestId, body, timeoutMs });
    const text = await readBody(opened, Math.max(1, timeoutMs - (Date.now() - start)), requestId, timeoutMs);
    return parseJsonAnswer<T>(text, opened.endpoint, requestId);
  }
}
