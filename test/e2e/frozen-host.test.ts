/**
 * The seed's hanging client, with the built CLI and a real host frozen with SIGSTOP: every command
 * times out with a message naming the host instead of hanging, and a destroy whose client gave up
 * while the host was frozen never runs after SIGCONT (a deadline travels with the request).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { BIN, pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';

const scratch = scratchDir('factory-frozen-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'frozen.yaml');
writeFileSync(plan, 'name: frozen\nprocesses:\n  - name: nap\n    count: 2\n    command: [sleep, "600"]\n    resources: {cpus: 0.05, mem: 8Mi}\n');
let host: ChildProcess | undefined;
const pids: number[] = [];

afterAll(async () => {
  if (host && host.exitCode === null && host.signalCode === null) {
    host.kill('SIGCONT');
    host.kill('SIGTERM');
    await new Promise((r) => host!.once('exit', r));
  }
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

test('a host frozen with SIGSTOP: clients time out naming it; a destroy given up on never runs after SIGCONT', async () => {
  const applied = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
  expect(applied.code, applied.stderr).toBe(0);
  for (const p of JSON.parse(applied.stdout).results as { pid?: number }[]) if (p.pid) pids.push(p.pid);
  expect(pids).toHaveLength(2);

  host = spawn(BIN, ['control', 'serve', '--state', state, '--reconcile-interval', '0'], { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  host.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  expect(await waitFor(() => /state .* \(id st-[0-9a-f]+\), pid \d+/.test(log), 15_000, 50), log).toBe(true);
  host.kill('SIGSTOP');

  const t0 = Date.now();
  const st = await runCli(['status', '--state', state, '--timeout', '2'], { cwd: scratch.dir, timeoutMs: 30_000 });
  expect(st.code).not.toBe(0);
  expect(st.stderr).toMatch(/control host unix:.*control\.sock did not answer within 2 s/);
  expect(st.stderr).not.toMatch(/\n\s+at /);
  expect(Date.now() - t0).toBeLessThan(15_000);

  const destroy = await runCli(['plan', 'destroy', plan, '--state', state, '--timeout', '2'], { cwd: scratch.dir, timeoutMs: 30_000 });
  expect(destroy.code).not.toBe(0);
  expect(destroy.stderr).toMatch(/control host unix:.*control\.sock did not answer within 2 s/);

  host.kill('SIGCONT');
  // the host reads the destroy now: its client is gone and its deadline passed, so it must not run
  // (refused with 408 before it reaches the write queue, or dropped there)
  const after = await runCli(['status', '--json', '--state', state], { cwd: scratch.dir });
  expect(after.code, after.stderr).toBe(0);
  await new Promise((r) => setTimeout(r, 1000));
  expect(log).not.toMatch(/served plan destroy/);
  for (const pid of pids) expect(pidAlive(pid), `task pid ${pid}`).toBe(true);
  const last = await runCli(['status', '--json', '--state', state], { cwd: scratch.dir });
  expect(last.code, last.stderr).toBe(0);
  expect((JSON.parse(last.stdout).tasks as { state: string }[]).map((t) => t.state)).toEqual(['running', 'running']);
}, 90_000);
