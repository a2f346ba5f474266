/**
 * ApiHost serves the API app on the state's unix socket (`<state>/control.sock`, mode 0600: only its
 * user may connect, and is trusted without a token) and, with `listen`, on TCP with TLS (a given
 * certificate, else a self-signed pair made once under `<state>/tls/`, whose SHA-256 fingerprint is
 * logged so clients can pin it). Like `factory control serve`, it refuses to start when a live host
 * already answers on the state's socket, and replaces a socket left by one that is gone.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isIP } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { generate } from 'selfsigned';
import { health } from '../control/host-health.js';
import { FactoryError } from '../errors.js';
import type { StateBackend } from '../state/backend.js';
import { buildApp, type ApiAppOptions } from './app.js';
import { LOCAL } from './auth.js';
import type { ControlApi } from './contract.js';
import { ApiMetrics } from './metrics.js';
import { TokenStore } from './tokens.js';

/** ApiHostOptions configure a host. */
export interface ApiHostOptions {
  stateDir: string;
  backend: StateBackend;
  services: ControlApi;
  /** listen is `HOST:PORT` (`[::1]:8443`; port 0 picks one) for the TLS listener; absent: the socket only. */
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  log?: (line: string) => void;
  /**
   * rootToken is when `<state>/tokens/root` gets a valid admin token: `now` (default) at start;
   * `when-leading` for a host on etcd, which writes the state only once it leads (serve.ts then
   * calls tokens.ensureRoot under its fence): until then a missing token is only reported.
   */
  rootToken?: 'now' | 'when-leading';
  /** app passes further options to the app (limits, SSE tuning). */
  app?: Partial<Omit<ApiAppOptions, 'backend' | 'services' | 'tokens' | 'metrics' | 'log'>>;
}

/** TlsInfo says which certificate the TCP listener serves. */
export interface TlsInfo {
  cert: string;
  key: string;
  /** fingerprint is the certificate's SHA-256 fingerprint (AA:BB:…), for clients to pin. */
  fingerprint: string;
  selfSigned: boolean;
}

/** parseListen splits `HOST:PORT` (IPv6 in brackets). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new FactoryError(`--listen ${listen}: expected HOST:PORT (e.g. 0.0.0.0:8443, [::1]:0)`, { code: 'E_BAD_FLAG' });
  return { host: m[1] ?? m[2]!, port };
}

/** ApiHost is a running API host. */
export class ApiHost {
  /** address is the TCP listener's bound `host:port`, when it has one. */
  address?: string;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly stateDir: string,
    readonly socket: string,
    readonly app: FastifyInstance,
    readonly metrics: ApiMetrics,
    readonly tokens: TokenStore,
    private readonly unixServer: http.Server,
    private tcpServer?: https.Server,
    readonly tls?: TlsInfo,
    /** rootTokenFile is set when this start wrote a new root token there. */
    readonly rootTokenFile?: string,
  ) {}

  static async start(opts: ApiHostOptions): Promise<ApiHost> {
    const log = opts.log ?? (() => undefined);
    const stateDir = path.resolve(opts.stateDir);
    try {
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new FactoryError(`state directory ${stateDir} is not usable: ${(err as Error).message}`, { code: 'E_STATE_DIR' });
    }
    const socket = path.join(stateDir, 'control.sock');
    if (fs.existsSync(socket)) {
      const other = await health(socket, 1000).catch(() => undefined);
      if (other) throw new FactoryError(`a control host already serves ${stateDir} (pid ${other.pid ?? 'unknown'})`, { code: 'E_CONTROL_RUNNING', hint: other.pid ? `stop it first: kill ${other.pid}` : 'stop it first' });
      fs.rmSync(socket, { force: true }); // left by a host that is gone
    }
    const listen = opts.listen ? parseListen(opts.listen) : undefined;
    const tls = listen ? await tlsFor(stateDir, listen.host, opts.tlsCert, opts.tlsKey, log) : undefined;

    const tokens = new TokenStore(opts.backend);
    const rootTokenFile = opts.rootToken === 'when-leading' ? undefined : await tokens.ensureRoot(stateDir);
    if (rootTokenFile) log(`wrote the root admin token to ${rootTokenFile} (mode 0600); use it as Authorization: Bearer <token>`);
    if (opts.rootToken === 'when-leading' && !tokens.hasRoot(stateDir)) {
      log(`no root admin token in ${path.join(stateDir, 'tokens', 'root')} yet: this host writes one when it leads (only the leader writes the state); meanwhile any other host's root token works here`);
    }
    const metrics = new ApiMetrics(opts.backend, { defaults: true });
    const startedAt = new Date().toISOString();
    let host: ApiHost | undefined;
    const app = await buildApp({
      ...opts.app,
      backend: opts.backend,
      services: opts.services,
      tokens,
      metrics,
      log,
      health: () => ({ stateDir, socket, startedAt, ...(host?.address ? { listen: host.address } : {}), ...(host?.tls ? { tlsFingerprint: host.tls.fingerprint } : {}), ...opts.app?.health?.() }),
    });

    const unixServer = http.createServer((req, res) => {
      (req as http.IncomingMessage & { [LOCAL]?: boolean })[LOCAL] = true;
      app.routing(req, res);
    });
    try {
      await listenOn(unixServer, () => {
        const old = process.umask(0o177); // the socket is created for this user alone
        return { done: () => process.umask(old), args: [socket] };
      }, socket);
      fs.chmodSync(socket, 0o600);
      host = new ApiHost(stateDir, socket, app, metrics, tokens, unixServer, undefined, tls, rootTokenFile);
      host.track(unixServer);
      log(`serving ${stateDir} on ${socket}`);
      if (listen && tls) {
        const tcp = https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, (req, res) => app.routing(req, res));
        host.tcpServer = tcp;
        host.track(tcp);
        await listenOn(tcp, () => ({ done: () => undefined, args: [listen.port, listen.host] }), opts.listen!);
        const a = tcp.address() as AddressInfo;
        host.address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
        log(`serving https://${host.address} (TLS certificate ${tls.cert}, SHA-256 fingerprint ${tls.fingerprint})`);
      }
    } catch (err) {
      await host?.close().catch(() => undefined);
      if (!host) {
        unixServer.close();
        await app.close();
      }
      throw err;
    }
    return host;
  }

  private track(server: http.Server | https.Server): void {
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    // a request that is not HTTP gets a 400 in the API's shape, never a crash
    server.on('clientError', (err: NodeJS.ErrnoException, s: Socket) => {
      if (!s.writable) return void s.destroy();
      const body = JSON.stringify({ error: { code: err.code === 'HPE_HEADER_OVERFLOW' ? 'E_TOO_LARGE' : 'E_BAD_REQUEST', message: `malformed request: ${err.code ?? err.message}` } });
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      s.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    server.requestTimeout = 0; // streams (events, logs, apply) are long; idle is bounded by keepAliveTimeout
    server.headersTimeout = 30_000;
  }

  /** close stops both listeners, ends open streams, removes the socket. */
  async close(): Promise<void> {
    const closing = [this.unixServer, this.tcpServer].filter((s): s is http.Server => Boolean(s?.listening)).map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const s of this.sockets) s.destroy();
    this.unixServer.closeAllConnections();
    this.tcpServer?.closeAllConnections();
    await Promise.all(closing);
    fs.rmSync(this.socket, { force: true });
    await this.app.close();
  }
}

function listenOn(server: http.Server, prep: () => { done: () => void; args: (string | number)[] }, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { done, args } = prep();
    const onError = (err: Error) => {
      done();
      reject(new FactoryError(`cannot listen on ${what}: ${err.message}`, { code: 'E_CONTROL_LISTEN' }));
    };
    server.once('error', onError);
    (server.listen as (...a: unknown[]) => void)(...args, () => {
      done();
      server.off('error', onError);
      resolve();
    });
  });
}

/** tlsFor returns the given certificate, or the state's self-signed pair (made on first use). */
async function tlsFor(stateDir: string, host: string, certFile: string | undefined, keyFile: string | undefined, log: (l: string) => void): Promise<TlsInfo> {
  if (Boolean(certFile) !== Boolean(keyFile)) throw new FactoryError('--tls-cert and --tls-key go together', { code: 'E_BAD_FLAG' });
  if (certFile && keyFile) {
    try {
      const pem = fs.readFileSync(certFile, 'utf8');
      fs.accessSync(keyFile, fs.constants.R_OK);
      return { cert: path.resolve(certFile), key: path.resolve(keyFile), fingerprint: new X509Certificate(pem).fingerprint256, selfSigned: false };
    } catch (err) {
      throw new FactoryError(`cannot use the TLS certificate ${certFile}: ${(err as Error).message}`, { code: 'E_BAD_FLAG' });
    }
  }
  const dir = path.join(stateDir, 'tls');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  if (!fs.existsSync(cert) || !fs.existsSync(key)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const alt: { type: 2 | 7; value?: string; ip?: string }[] = [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }];
    if (host && !['0.0.0.0', '::', 'localhost', '127.0.0.1', '::1'].includes(host)) alt.push(isIP(host) ? { type: 7, ip: host } : { type: 2, value: host });
    const pems = await generate([{ name: 'commonName', value: 'factory control host' }], {
      keySize: 2048,
      notAfterDate: new Date(Date.now() + 3650 * 24 * 3600 * 1000),
      algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: false }, { name: 'subjectAltName', altNames: alt }],
    } as Parameters<typeof generate>[1]);
    fs.writeFileSync(key, pems.private, { mode: 0o600 });
    fs.writeFileSync(cert, pems.cert, { mode: 0o644 });
    log(`made a self-signed TLS certificate ${cert}`);
  }
  const fingerprint = new X509Certificate(fs.readFileSync(cert, 'utf8')).fingerprint256;
  return { cert, key, fingerprint, selfSigned: true };
}
