/**
 * Two `plan apply` runs at the same time on one state never interleave: the second waits for the
 * lock, then sees the first one's work and changes nothing. No task is started twice.
 */
import { afterAll, expect, test } from 'vitest';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pidAlive, runCli, scratchDir } from '../helpers/cli.js';

const scratch = scratchDir();
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'pair.yaml');
writeFileSync(plan, 'name: pair\nprocesses:\n  - name: nap\n    count: 4\n    command: [sleep, "600"]\n    resources: {cpus: 0.05, mem: 8Mi}\n');

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir });
  scratch.cleanup();
});

test('concurrent applies: one does the work, the other waits and finds nothing to do', async () => {
  const [a, b] = await Promise.all([
    runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir }),
    runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir }),
  ]);
  expect(a.code, a.stderr).toBe(0);
  expect(b.code, b.stderr).toBe(0);
  const creates = [JSON.parse(a.stdout).changes.create, JSON.parse(b.stdout).changes.create].sort();
  expect(creates).toEqual([0, 4]);
  const s = JSON.parse((await runCli(['status', '--json', '--state', state], { cwd: scratch.dir })).stdout);
  expect(s.tasks).toHaveLength(4);
  const pids = s.tasks.map((t: { pid: number }) => t.pid);
  expect(new Set(pids).size).toBe(4);
  for (const pid of pids) expect(pidAlive(pid)).toBe(true);
  // exactly four task folders on the agent: nothing started twice (named for this state: `_<8 hex of its id>`)
  const sfx = `_${String(s.stateId).slice(3, 11)}`;
  expect(s.stateId).toMatch(/^st-[0-9a-f]{12}$/);
  expect(readdirSync(path.join(state, 'agents', 'local', 'tasks')).sort()).toEqual(['pair.nap.0', 'pair.nap.1', 'pair.nap.2', 'pair.nap.3'].map((n) => n + sfx));
});

test('a waiter gives up with a clear message when the lock is held too long', async () => {
  // hold the lock from this process, like a long apply would
  const { FileBackend } = await import('../../src/state/file-backend.js');
  const store = await FileBackend.open(state);
  await store.lock({ purpose: 'test holder' });
  try {
    const r = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir, env: { FACTORY_LOCK_TIMEOUT: '1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/state .* is locked by another factory process \(pid \d+, test holder/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  } finally {
    await store.unlock();
  }
});

test('an apply killed with SIGKILL while it holds the lock: the next one takes the lock over at once, names the dead holder, and nothing runs twice', async () => {
  const big = path.join(scratch.dir, 'many.yaml');
  writeFileSync(big, 'name: many\nprocesses:\n  - name: nap\n    count: 24\n    command: [sleep, "600"]\n    resources: {cpus: 0.01, mem: 4Mi}\n');
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../helpers/cli.js');
  const { existsSync, readFileSync } = await import('node:fs');
  const child = spawn(BIN, ['plan', 'apply', big, '--state', state], { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_CONTROL: 'off' }, stdio: 'ignore' });
  const owner = path.join(state, 'state.lock.owner');
  // kill it once it holds the lock and has started something (bounded: 30 s)
  const until = Date.now() + 30_000;
  let holding = false;
  while (!holding && Date.now() < until) {
    holding = existsSync(owner) && readFileSync(owner, 'utf8').includes(`"pid":${child.pid}`) && existsSync(path.join(state, 'agents', 'local', 'tasks')) && readdirSync(path.join(state, 'agents', 'local', 'tasks')).some((d) => d.startsWith('many.'));
    if (!holding) await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  expect(holding, 'the apply held the lock and had started tasks when it was killed').toBe(true);
  await new Promise((r) => child.once('exit', r));
  const t0 = Date.now();
  const r = await runCli(['plan', 'apply', big, '--state', state, '--json'], { cwd: scratch.dir, env: { FACTORY_LOCK_TIMEOUT: '30' } });
  const took = Date.now() - t0;
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(new RegExp(`took over the state lock of pid ${child.pid}, plan apply.*that process is gone`));
  // waiting for a stale lock took 10 s before
  expect(took).toBeLessThan(8_000);
  const s = JSON.parse((await runCli(['status', '--json', '--state', state], { cwd: scratch.dir })).stdout);
  const mine = s.tasks.filter((t: { plan: string }) => t.plan === 'many');
  expect(mine).toHaveLength(24);
  expect(new Set(mine.map((t: { pid: number }) => t.pid)).size).toBe(24);
  for (const t of mine) expect(pidAlive(t.pid)).toBe(true);
  expect(readdirSync(path.join(state, 'agents', 'local', 'tasks')).filter((d) => d.startsWith('many.')).sort()).toHaveLength(24);
  await runCli(['plan', 'destroy', big, '--state', state], { cwd: scratch.dir });
}, 120_000);
