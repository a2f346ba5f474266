/**
 * Starting and stopping `factory control serve` (the built CLI) for tests and for the benches that
 * time commands through a control host (bench/docker.ts, bench/vm.ts).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** BIN is the installed command: bin/factory, the package's bin. */
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'factory');

/** RunningHost is a control host started by startControlHost. */
export interface RunningHost {
  /** served counts the commands the host reports having served. */
  served(): number;
  /** log is everything the host printed so far. */
  log(): string;
  stop(): Promise<void>;
}

/** startControlHost starts `factory control serve --state state` with env and waits until it listens. */
export async function startControlHost(state: string, opts: { cwd: string; env: NodeJS.ProcessEnv; reconcileS?: number }): Promise<RunningHost> {
  const args = ['control', 'serve', '--state', state, '--reconcile-interval', String(opts.reconcileS ?? 0)];
  const child = spawn(BIN, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const end = Date.now() + 15_000;
  while (!/serving .* on /.test(log)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`factory control serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!fs.statSync(path.join(state, 'control.sock')).isSocket()) throw new Error('no control socket');
  return {
    served: () => (log.match(/served /g) ?? []).length,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
