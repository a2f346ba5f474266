/**
 * Starting and stopping `factory control serve` (the built CLI) for tests and for the benches that
 * time commands through a control host (bench/docker.ts, bench/vm.ts).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** BIN is the installed command: bin/factory, the package's bin. */
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'factory');

/** RunningHost is a control host started by startControlHost. */
export interface RunningHost {
  /** served counts the writes the host reports having served. */
  served(): number;
  /** url is the host's https:// address when it was started with listen. */
  url?: string;
  /** fingerprint is the SHA-256 fingerprint of its TLS certificate (with listen). */
  fingerprint?: string;
  /** pid is the host's process id. */
  pid: number;
  /** log is everything the host printed so far. */
  log(): string;
  stop(): Promise<void>;
}

/** startControlHost starts `factory control serve --state state` with env and waits until it listens. */
export async function startControlHost(state: string, opts: { cwd: string; env: NodeJS.ProcessEnv; reconcileS?: number; listen?: string }): Promise<RunningHost> {
  const args = ['control', 'serve', '--state', state, '--reconcile-interval', String(opts.reconcileS ?? 0), ...(opts.listen ? ['--listen', opts.listen] : [])];
  const child = spawn(BIN, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const end = Date.now() + 15_000;
  while (!/serving .* on /.test(log) || (opts.listen && !/serving https:\/\//.test(log))) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`factory control serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!fs.statSync(path.join(state, 'control.sock')).isSocket()) throw new Error('no control socket');
  const tls = log.match(/serving (https:\/\/\S+) \(TLS certificate .*SHA-256 fingerprint ([0-9A-F:]+)\)/);
  return {
    pid: child.pid!,
    ...(tls ? { url: tls[1], fingerprint: tls[2] } : {}),
    served: () => (log.match(/ served /g) ?? []).length,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * hostGet GETs a path of the API of the control host of state on its unix socket (trusted there
 * without a token) and parses the JSON answer; anything but a 200 rejects with the status and body.
 */
export function hostGet<T>(state: string, urlPath: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path.join(state, 'control.sock'), path: urlPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as T) : reject(new Error(`GET ${urlPath}: ${res.statusCode} ${body}`))));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath}: no answer in ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}
