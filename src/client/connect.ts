/**
 * connectEndpoint opens one connection to a control host by hand (net.connect / tls.connect) and
 * resolves only once it is connected and, for HTTPS, its certificate checked (by CA or by a pinned
 * SHA-256 fingerprint): nothing of a request, the bearer token least of all, is written to a server
 * that failed the check. Failures say whether the next endpoint may be tried (refused, no socket,
 * connect timeout) or not (TLS: unknown CA, wrong name, pin mismatch).
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { FactoryError } from '../errors.js';
import type { Endpoint } from './endpoint.js';
import { seconds } from './exchange.js';

/** ConnectError is a failure to reach an endpoint; `retriable` says whether the next endpoint may be tried. */
export class ConnectError extends FactoryError {
  constructor(
    readonly endpoint: string,
    readonly reason: string,
    readonly retriable: boolean,
    opts: { code?: string; hint?: string; cause?: unknown } = {},
  ) {
    super(`control host ${endpoint}${reason.startsWith('did not answer') ? ' ' : ': '}${reason}`, { code: opts.code ?? 'E_CONTROL_UNREACHABLE', hint: opts.hint, cause: opts.cause });
  }
}

/** TlsTrust is how an HTTPS endpoint is trusted: pinned fingerprints (normalized) replace the CA check. */
export interface TlsTrust {
  /** ca is the CA(s) to trust in place of the system roots (absent: the system roots). */
  ca?: (string | Buffer)[];
  /** fingerprints are the pinned SHA-256 fingerprints in openssl's form; any one may match. */
  fingerprints: string[];
}

/** extraCaCerts reads NODE_EXTRA_CA_CERTS (Node adds it to the default store, but not to an explicit `ca`). */
export function extraCaCerts(env: NodeJS.ProcessEnv = process.env): string[] {
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

function isTlsError(code: string | undefined): boolean {
  if (!code) return false;
  return /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|ALTNAME|HANDSHAKE|ERR_TLS/.test(code);
}

/** connectEndpoint opens a connection to ep and, for HTTPS, checks the certificate before anything is sent. */
export function connectEndpoint(ep: Endpoint, trust: TlsTrust, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
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
    // the timer exists before anything can fail: fail() clears it, a signal aborted already included
    const timer = setTimeout(() => fail(new ConnectError(ep.url, `did not answer within ${seconds(timeoutMs)} (while connecting)`, true, { code: 'E_CONTROL_TIMEOUT' })), timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
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
      const { fingerprints, ca } = trust;
      const pinned = fingerprints.length > 0;
      const tlsSocket = tls.connect({
        host: ep.host,
        port: ep.port,
        servername: net.isIP(ep.host) ? undefined : ep.host,
        ALPNProtocols: ['http/1.1'],
        // a pin replaces the CA check: the certificate itself is what we trust
        rejectUnauthorized: !pinned,
        ...(ca && !pinned ? { ca } : {}),
      });
      socket = tlsSocket;
      tlsSocket.once('secureConnect', () => {
        if (pinned) {
          const cert = tlsSocket.getPeerCertificate();
          const got = cert?.fingerprint256 ? cert.fingerprint256.toUpperCase() : '(no certificate)';
          if (!fingerprints.includes(got)) {
            fail(
              new ConnectError(ep.url, `certificate fingerprint mismatch: the server presented SHA-256 ${got}, but ${fingerprints.length > 1 ? `one of ${fingerprints.join(', ')}` : fingerprints[0]} is pinned; refusing to connect`, false, {
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
