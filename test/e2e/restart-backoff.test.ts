/**
 * Restart backoff (issue 14) with the built CLI, a real control host reconciling every second and a
 * process that exits 1 as soon as it starts, for 62 s: the attempts (each writes its start time, in
 * ms, to a file: the truth, whatever factory records) are spaced as `restartBackoff {initial: 1s,
 * factor: 2, max: 8s}` says, one event per death is written instead of three, `status --json` shows
 * the crash loop with its next restart, and a host killed mid-loop and started again goes on at the
 * step it was at (8 s), not at the first one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { backoffDelayMs } from '../../src/control/restart-backoff.js';
import { BIN, runCli, scratchDir, waitFor } from '../helpers/cli.js';

const POLICY = { initialMs: 1000, factor: 2, maxMs: 8000 };
const RECONCILE_S = 1;
/** SLACK_MS is what a restart may come after it is due: the reconcile interval, a pass, a CLI call on a shared machine. */
const SLACK_MS = RECONCILE_S * 1000 + 2000;

const scratch = scratchDir('factory-backoff-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'crashy.yaml');
const attemptsFile = path.join(scratch.dir, 'attempts');
writeFileSync(
  plan,
  `name: crashy
processes:
  - name: crash
    restart: always
    restartBackoff: {initial: 1s, factor: 2, max: 8s}
    command: ["sh", "-c", "date +%s%3N >> ${attemptsFile}; exit 1"]
    resources: {cpus: 0.1, mem: 16Mi}
`,
);

const env = (extra: Record<string, string> = {}) => ({ ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...extra });
const hosts: ChildProcess[] = [];

async function startHost(): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(BIN, ['control', 'serve', '--state', state, '--reconcile-interval', String(RECONCILE_S)], { cwd: scratch.dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  hosts.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const up = await waitFor(() => /state .* \(id st-[0-9a-f]+\), pid \d+/.test(out), 15_000, 50);
  expect(up, `control serve did not start:\n${out}`).toBe(true);
  return { child, log: () => out };
}

async function stopHost(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  await done;
}

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const attempts = (): number[] => (existsSync(attemptsFile) ? readFileSync(attemptsFile, 'utf8').trim().split('\n').filter(Boolean).map(Number) : []);

interface TaskView { task: string; state: string; restarts?: number; crashLoop?: boolean; nextRestartAt?: string; backoffMs?: number }

afterAll(async () => {
  for (const h of hosts) await stopHost(h, 'SIGTERM');
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  scratch.cleanup();
});

test('a crash-looping process over 62 s: attempts spaced by the backoff, one event per death, the crash loop in status, the step kept across a host restart', async () => {
  let host = await startHost();
  const t0 = Date.now();
  const applied = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
  // the process may be seen running (exit 0) or already failed (exit 3: a task failed to start)
  expect([0, 3], applied.stderr).toContain(applied.code);

  // 1. status during the loop, through the host: a crash loop with its next restart
  await sleepUntil(t0 + 20_000);
  const st = await runCli(['status', '--json', '--state', state], { cwd: scratch.dir });
  expect(st.code, st.stderr).toBe(0);
  const seenAt = Date.now();
  const task = (JSON.parse(st.stdout) as { tasks: TaskView[] }).tasks.find((t) => t.task === 'crashy/crash/0')!;
  expect(task, st.stdout).toMatchObject({ crashLoop: true });
  expect(task.restarts).toBeGreaterThanOrEqual(3);
  if (task.nextRestartAt) {
    // a pass noted the last death: the next restart is at most one step after it
    expect(task.backoffMs).toBe(backoffDelayMs(POLICY, task.restarts!));
    expect(Date.parse(task.nextRestartAt)).toBeLessThanOrEqual(seenAt + task.backoffMs!);
  }
  const human = await runCli(['status', '--state', state], { cwd: scratch.dir });
  expect(human.stdout).toMatch(/crashy\/crash\/0\s+local\s+process\s+-\s+crash-loop\s+(\S+\s+)?exit 1; (restart \d+ at \d\d:\d\d:\d\dZ \((in \d+s|due)\)|\d+ restarts, next at the next pass)/);

  // 2. the host is killed mid-loop (at the 8 s cap) and another one started on the same state
  await sleepUntil(t0 + 34_000);
  const beforeKill = attempts();
  await stopHost(host.child, 'SIGKILL');
  const killedAt = Date.now();
  host = await startHost();
  const restartedAt = Date.now();

  await sleepUntil(t0 + 62_000);
  const end = Date.now();
  await stopHost(host.child, 'SIGTERM');

  // 3. the attempts, as the process itself wrote them
  const at = attempts();
  const gaps = at.slice(1).map((t, i) => t - at[i]!);
  const waits = gaps.map((_, i) => backoffDelayMs(POLICY, i)); // gap i leads to restart i+1, after i restarts of the loop
  const spanning = gaps.map((_, i) => at[i]! < killedAt && at[i + 1]! > killedAt);
  console.log(
    [
      `restart backoff e2e: ${at.length} attempts in ${((end - t0) / 1000).toFixed(1)} s; host killed at +${((killedAt - t0) / 1000).toFixed(1)} s, new host up at +${((restartedAt - t0) / 1000).toFixed(1)} s`,
      `  attempts at (s): ${at.map((t) => ((t - t0) / 1000).toFixed(2)).join(', ')}`,
      `  gaps (s):        ${gaps.map((g) => (g / 1000).toFixed(2)).join(', ')}`,
      `  backoff (s):     ${waits.map((w) => (w / 1000).toFixed(0)).join(', ')}`,
    ].join('\n'),
  );
  // 1 s, 2 s, 4 s, then 8 s: about 10 attempts in a minute (27 without backoff at a 2 s interval)
  expect(at.length).toBeGreaterThanOrEqual(8);
  expect(at.length).toBeLessThanOrEqual(12);
  for (let i = 0; i < gaps.length; i++) {
    expect(gaps[i], `gap ${i}`).toBeGreaterThanOrEqual(waits[i]!);
    // a gap across the host restart may also hold the new host's start
    expect(gaps[i], `gap ${i}`).toBeLessThanOrEqual(waits[i]! + SLACK_MS + (spanning[i] ? restartedAt - killedAt : 0));
  }
  // the new host went on at the 8 s step: its first restart came a full step after the last one before the kill
  const firstAfter = at.findIndex((t) => t > killedAt);
  expect(firstAfter, 'no attempt after the host restart').toBeGreaterThan(0);
  expect(beforeKill.length).toBeGreaterThanOrEqual(6);
  expect(at[firstAfter]! - at[firstAfter - 1]!).toBeGreaterThanOrEqual(POLICY.maxMs);

  // 4. the events: in the loop, one task-crash-loop event per death (the count and next restart in it)
  const ev = await runCli(['status', '--json', '--cached', '--events', '1000', '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  expect(ev.code, ev.stderr).toBe(0);
  // every event of the state (its only plan is this one; plan-reconciled names no plan)
  const events = (JSON.parse(ev.stdout) as { events: { kind: string; plan?: string; message: string; at: string }[] }).events;
  const kinds = new Map<string, number>();
  for (const e of events) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
  const perMinute = (events.length / (end - t0)) * 60_000;
  console.log(`  events: ${events.length} (${perMinute.toFixed(1)} a minute): ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  const loops = events.filter((e) => e.kind === 'task-crash-loop');
  // every death after the first restart is one event (the last death may not be noted yet)
  expect(loops.length).toBeGreaterThanOrEqual(at.length - 3);
  expect(loops.length).toBeLessThanOrEqual(at.length - 1);
  expect(loops.at(-1)?.message).toMatch(/^crashy\/crash\/0 crash loop on local: died again \(exit code 1\) after \d+ restarts since \S+; restart \d+ at \S+ \(backoff 8s\)$/);
  // from the first crash-loop event on, nothing else: no death, restart or reconcile event per attempt
  const loopStart = events.indexOf(loops[0]!);
  expect(events.slice(loopStart).filter((e) => e.kind !== 'task-crash-loop').map((e) => e.kind)).toEqual([]);
  // the bound designed: one event per attempt, plus what came before the loop: the host's token, the
  // apply's three (requested, applied, started) and the first death's three (death, restart, reconcile)
  expect(events.slice(0, loopStart).length).toBeLessThanOrEqual(7);
  expect(events.length).toBeLessThanOrEqual(at.length + 7);
  expect(perMinute).toBeLessThan(20);
}, 90_000);
