/**
 * The local transport: the executor runs as a child process of the CLI on this machine. The child is
 * tied to the CLI (it exits when its stdin closes); the tasks it starts are detached and survive both.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError, FactoryError } from '../errors.js';
import { deferEnv } from '../executors/deferred-env.js';
import type { Transport, TransportChannel, TransportExit } from './transport.js';

/** PACKAGE_NAME is the name in the package.json that marks the package root. */
export const PACKAGE_NAME = 'compute-factory';

/** findPackageRoot walks up from `from` to the folder whose package.json is named `compute-factory`. */
export function findPackageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = path.dirname(path.resolve(from));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    try {
      const parsed = JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string };
      if (parsed.name === PACKAGE_NAME) return dir;
    } catch {
      /* not here */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new FactoryError(`cannot find the ${PACKAGE_NAME} package root above ${from}`, { code: 'E_INSTALL' });
    dir = up;
  }
}

/** builtExecutorFile is a file of the built executor under dist/ in the package; a FactoryError when it was not built. */
export function builtExecutorFile(root: string, ...rel: string[]): string {
  const p = path.join(root, 'dist', ...rel);
  if (!fs.existsSync(p)) {
    throw new FactoryError(`executor not built: run npm run build (missing ${p})`, { code: 'E_NOT_BUILT', hint: 'npm run build' });
  }
  return p;
}

/** executorPath is the built executor program inside the package; a FactoryError when it was not built. */
export function executorPath(root: string = findPackageRoot()): string {
  return builtExecutorFile(root, 'executors', 'executor.js');
}

/** LocalTransportOptions tunes the local transport (mostly for tests). */
export interface LocalTransportOptions {
  /** executor overrides the executor program path. */
  executor?: string;
  /** env is extra environment for the executor process. */
  env?: Record<string, string>;
  /** closeTimeoutMs is how long close() waits for the executor after closing stdin (default 3000). */
  closeTimeoutMs?: number;
}

/** LocalTransport runs `node <pkgRoot>/dist/executors/executor.js` as a child process. */
export class LocalTransport implements Transport {
  /** agent is the agent's name (default `local`). */
  readonly agent: string;

  constructor(agent = 'local', private readonly opts: LocalTransportOptions = {}) {
    this.agent = agent;
  }

  /** open spawns the executor; the child is not detached, so it ends with the CLI. */
  async open(): Promise<TransportChannel> {
    let program: string;
    try {
      program = this.opts.executor ?? executorPath();
    } catch (err) {
      if (err instanceof FactoryError) throw new AgentError(this.agent, err.message, { code: err.code, hint: err.hint, cause: err });
      throw err;
    }
    const child = spawn(process.execPath, [program], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // the executor makes no TLS connections: it starts without parsing NODE_EXTRA_CA_CERTS and restores it for its tasks
      env: deferEnv({ ...process.env, ...this.opts.env }),
    });
    const exited = new Promise<TransportExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: child.exitCode, signal: child.signalCode }));
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new AgentError(this.agent, `cannot start the executor: ${err.message}`, { cause: err })));
    });
    // A dead executor must surface as an exit, not as an unhandled EPIPE.
    child.stdin.on('error', () => undefined);
    const closeTimeout = this.opts.closeTimeoutMs ?? 3000;
    let ended = false;
    void exited.then(() => {
      ended = true;
    });
    return {
      pid: child.pid,
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      close: async () => {
        if (!child.stdin.destroyed) child.stdin.end();
        if (ended) return;
        const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), closeTimeout).unref());
        if ((await Promise.race([exited, timer])) === 'timeout' && !ended && child.pid) {
          try {
            process.kill(child.pid, 'SIGTERM');
          } catch {
            /* already gone */
          }
          await exited;
        }
      },
    };
  }
}
