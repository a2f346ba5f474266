/**
 * `factory control serve` with the built CLI and real processes: the CLI's plan and status commands
 * on the host's state directory run in the host (its log says so), print what a one-shot run prints,
 * keep the state file's rules (lock, errors, no half-written state), and fall back to running
 * themselves when the host is gone, stale, or started with another environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { health } from '../../src/control/serve.js';
import { BIN, pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';

const PLAN = `name: hosted
project: e2e
processes:
  - name: nap
    count: 2
    command: ["sleep", "600"]
    resources: {cpus: 0.1, mem: 16Mi}
`;

const scratch = scratchDir('factory-control-');
const state = path.join(scratch.dir, 'state');
const socket = path.join(state, 'control.sock');
const plan = path.join(scratch.dir, 'hosted.yaml');
const pids = new Set<number>();

/** Host is a running `factory control serve` and everything it printed. */
interface Host {
  child: ChildProcess;
  log: () => string;
  served: () => number;
}

/** the env runCli gives the CLI, so the host and its clients agree on FACTORY_* */
const cliEnv = (extra: Record<string, string> = {}) => ({ ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...extra });

async function startHost(opts: { state?: string; reconcileS?: number } = {}): Promise<Host> {
  const args = ['control', 'serve', '--state', opts.state ?? state, '--reconcile-interval', String(opts.reconcileS ?? 0)];
  const child = spawn(BIN, args, { cwd: scratch.dir, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const up = await waitFor(() => /serving .* on .*control\.sock \(pid \d+\)/.test(out), 15_000, 50);
  expect(up, `control serve did not start:\n${out}`).toBe(true);
  return { child, log: () => out, served: () => (out.match(/served /g) ?? []).length };
}

async function stopHost(h: Host, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return h.child.exitCode;
  const done = new Promise<number | null>((r) => h.child.once('exit', (code) => r(code)));
  h.child.kill(signal);
  return done;
}

async function statusTasks(env: Record<string, string> = {}, dir = state): Promise<{ task: string; state: string; pid?: number }[]> {
  const r = await runCli(['status', '--json', '--state', dir], { cwd: scratch.dir, env });
  expect(r.code, r.stderr).toBe(0);
  const tasks = (JSON.parse(r.stdout) as { tasks: { task: string; state: string; pid?: number }[] }).tasks;
  for (const t of tasks) if (t.pid) pids.add(t.pid);
  return tasks;
}

let host: Host;

/** expectServed waits (briefly) for the host's log to count n served commands: its log and the client's exit arrive on different pipes. */
async function expectServed(h: Host, n: number): Promise<void> {
  await waitFor(() => h.served() >= n, 2000, 20);
  expect(h.served(), h.log()).toBe(n);
}

beforeAll(async () => {
  writeFileSync(plan, PLAN);
  host = await startHost();
});

afterAll(async () => {
  if (host) await stopHost(host);
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

describe('factory control serve', () => {
  test('listens on <state>/control.sock, a socket only its user may use, and says who it is', async () => {
    const st = statSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const h = await health(socket);
    expect(h.pid).toBe(host.child.pid);
    expect(h.stateDir).toBe(state);
  });

  test('plan apply runs in the host: same output, real tasks, a second apply changes nothing', async () => {
    const before = host.served();
    const r = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Applied: 2 created, 0 updated, 0 destroyed\./);
    expect(r.stderr).toMatch(/hosted\/nap\/0 on local: started \(pid \d+\)/);
    await expectServed(host, before + 1);
    expect(host.log()).toMatch(/served plan apply .*hosted\.yaml .*→ exit 0/);
    const tasks = await statusTasks();
    expect(tasks.map((t) => [t.task, t.state])).toEqual([
      ['hosted/nap/0', 'running'],
      ['hosted/nap/1', 'running'],
    ]);
    for (const t of tasks) expect(pidAlive(t.pid!)).toBe(true);
    const again = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/No changes\./);
    await expectServed(host, before + 3);
  });

  test('status through the host and status run alone agree, and both name the host', async () => {
    const hosted = await statusTasks();
    const alone = await statusTasks({ FACTORY_CONTROL: 'off' });
    expect(hosted).toEqual(alone);
    const human = await runCli(['status', '--cached', '--state', state], { cwd: scratch.dir });
    expect(human.stdout).toMatch(new RegExp(`Control host: pid ${host.child.pid} since \\S+, \\d+ commands served, not supervising\\.`));
    const json = await runCli(['status', '--json', '--cached', '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect(JSON.parse(json.stdout).controlHost).toMatchObject({ pid: host.child.pid, stateDir: state, reconcileIntervalMs: 0 });
  });

  test('a task killed between two commands is seen by the next one (the warm session asks the agent again)', async () => {
    const [victim] = await statusTasks();
    process.kill(victim!.pid!, 'SIGKILL');
    await waitFor(() => !pidAlive(victim!.pid!), 5000);
    const before = host.served();
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    await expectServed(host, before + 1);
    const placements = JSON.parse(r.stdout).placements as { task: string; action: string }[];
    expect(placements.map((p) => [p.task, p.action]).sort()).toEqual(
      [[victim!.task, 'restart'], ...placements.filter((p) => p.task !== victim!.task).map((p) => [p.task, 'keep'])].sort(),
    );
    const after = await statusTasks();
    const revived = after.find((t) => t.task === victim!.task)!;
    expect(revived.state).toBe('running');
    expect(revived.pid).not.toBe(victim!.pid);
    expect(pidAlive(revived.pid!)).toBe(true);
  });

  test('a bad plan through the host: file:line:col, exit 1, no stack trace, no state change', async () => {
    const bad = path.join(scratch.dir, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nprocesses:\n  - name: x\n    command: [true]\n    colour: red\n');
    const before = host.served();
    const r = await runCli(['plan', 'apply', bad, '--state', state], { cwd: scratch.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:5:5: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    await expectServed(host, before + 1);
    expect((await statusTasks()).length).toBe(2);
  });

  test('relative paths are the client\'s: plan and state resolve in the directory the CLI ran in', async () => {
    const r = await runCli(['plan', 'diff', 'hosted.yaml', '--state', 'state', '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
    expect(host.log()).toMatch(/served plan diff hosted\.yaml --state state --json → exit 0/);
  });

  test('two applies at once through the host run one after the other', async () => {
    const two = path.join(scratch.dir, 'two.yaml');
    writeFileSync(two, PLAN.replace('name: hosted', 'name: twin').replace('count: 2', 'count: 1'));
    const before = host.served();
    const [a, b] = await Promise.all([0, 1].map(() => runCli(['plan', 'apply', two, '--state', state, '--json'], { cwd: scratch.dir })));
    await expectServed(host, before + 2);
    expect(a!.code, a!.stderr).toBe(0);
    expect(b!.code, b!.stderr).toBe(0);
    const creates = [a!, b!].map((r) => JSON.parse(r.stdout).changes.create).sort();
    expect(creates).toEqual([0, 1]);
    const d = await runCli(['plan', 'destroy', two, '--state', state], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
  });

  test('a client that waits is told why; one that goes away while it waits does not get its command run later', async () => {
    const slow = path.join(scratch.dir, 'slow.yaml');
    const other = path.join(scratch.dir, 'other.yaml');
    // a task that ignores SIGTERM: its destroy takes the whole stop grace
    writeFileSync(slow, 'name: slow\nprocesses:\n  - name: stubborn\n    command: ["sh", "-c", "trap \'\' TERM; while true; do sleep 1; done"]\n    stopGrace: 3s\n');
    writeFileSync(other, PLAN.replace('name: hosted', 'name: other').replace('count: 2', 'count: 1'));
    const up = await runCli(['plan', 'apply', slow, '--state', state], { cwd: scratch.dir });
    expect(up.code, up.stderr).toBe(0);
    const destroying = runCli(['plan', 'destroy', slow, '--state', state], { cwd: scratch.dir });
    expect(await waitFor(() => /served plan apply .*slow\.yaml/.test(host.log()), 5000, 20)).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // the destroy is running in the host now
    const waiter = runCli(['status', '--cached', '--state', state], { cwd: scratch.dir });
    const quitter = spawn(BIN, ['plan', 'apply', other, '--state', state], { cwd: scratch.dir, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let quitterErr = '';
    quitter.stderr!.on('data', (d: Buffer) => (quitterErr += d.toString()));
    expect(await waitFor(() => /waiting for the control host/.test(quitterErr), 3000, 20), quitterErr).toBe(true);
    quitter.kill('SIGKILL');
    const [d, w] = await Promise.all([destroying, waiter]);
    expect(d.code, d.stderr).toBe(0);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toMatch(new RegExp(`factory: waiting for the control host \\(pid ${host.child.pid}\\): plan destroy runs`));
    expect(await waitFor(() => /dropped plan apply .*other\.yaml.*: its client went away before it started/.test(host.log()), 5000, 20), host.log()).toBe(true);
    expect((await statusTasks()).map((t) => t.task)).not.toContain('other/nap/0');
  });

  test('a client whose environment differs runs the command itself', async () => {
    const before = host.served();
    const r = await runCli(['status', '--state', state, '--cached'], { cwd: scratch.dir, env: { FACTORY_DOCKER_HOST: 'unix:///nonexistent.sock' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hosted\/nap\/0/);
    await expectServed(host, before);
  });

  test('a second host on the same state is refused, naming the first', async () => {
    const r = await runCli(['control', 'serve', '--state', state], { cwd: scratch.dir, timeoutMs: 15_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`a control host already serves ${state} (pid ${host.child.pid})`);
    expect(existsSync(socket)).toBe(true);
  });

  test('SIGTERM stops the host and removes its socket; the tasks keep running and the CLI runs alone', async () => {
    const tasks = await statusTasks();
    expect(await stopHost(host)).toBe(0);
    expect(host.log()).toMatch(/stopped \(SIGTERM\); the tasks keep running/);
    expect(existsSync(socket)).toBe(false);
    for (const t of tasks) expect(pidAlive(t.pid!)).toBe(true);
    const r = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No changes\./);
    const s = await runCli(['status', '--json', '--cached', '--state', state], { cwd: scratch.dir });
    expect(JSON.parse(s.stdout).controlHost).toBeUndefined();
  });

  test('a socket left by a killed host is not trusted: the CLI runs alone and a new host replaces it', async () => {
    const dead = await startHost();
    await stopHost(dead, 'SIGKILL');
    expect(existsSync(socket)).toBe(true);
    const r = await runCli(['status', '--state', state, '--cached'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hosted\/nap\/1/);
    host = await startHost();
    const s = await runCli(['status', '--state', state, '--cached'], { cwd: scratch.dir });
    expect(s.code, s.stderr).toBe(0);
    await expectServed(host, 1);
  });
});

describe('factory control serve supervises the applied plans', () => {
  const sup = path.join(scratch.dir, 'supervised');
  const supPlan = path.join(scratch.dir, 'supervised.yaml');
  let h: Host;

  beforeAll(async () => {
    writeFileSync(supPlan, PLAN.replace('name: hosted', 'name: sup'));
    h = await startHost({ state: sup, reconcileS: 1 });
  });

  afterAll(async () => {
    if (h) await stopHost(h);
    await runCli(['plan', 'destroy', supPlan, '--state', sup], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  });

  const cached = async () => {
    const r = await runCli(['status', '--json', '--cached', '--state', sup], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect(r.code, r.stderr).toBe(0);
    const tasks = (JSON.parse(r.stdout) as { tasks: { task: string; state: string; pid?: number }[] }).tasks;
    for (const t of tasks) if (t.pid) pids.add(t.pid);
    return tasks;
  };

  test('a task killed by hand is restarted by the host, with no command run', async () => {
    expect(h.log()).toMatch(/supervising the applied plans every 1 s/);
    const r = await runCli(['plan', 'apply', supPlan, '--state', sup], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    const [victim] = await statusTasks({}, sup);
    process.kill(victim!.pid!, 'SIGKILL');
    let now: { task: string; state: string; pid?: number } | undefined;
    const revived = await waitFor(async () => {
      now = (await cached()).find((t) => t.task === victim!.task);
      return now?.state === 'running' && now.pid !== victim!.pid && pidAlive(now.pid!);
    }, 20_000, 250);
    expect(revived, `${JSON.stringify(now)}\n${h.log()}`).toBe(true);
    expect(h.log()).toMatch(new RegExp(`reconcile: ${victim!.task} on local: started \\(pid ${now!.pid}\\)`));
    const events = await runCli(['status', '--cached', '--events', '20', '--state', sup], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect(events.stdout).toMatch(/reconciled sup: 1 change/);
    expect(events.stdout).toMatch(/Control host: pid \d+ since \S+, \d+ commands served, supervising the applied plans every 1 s \(\d+ pass/);
  });

  test('plan files are not re-read: an edited plan changes nothing until it is applied', async () => {
    writeFileSync(supPlan, PLAN.replace('name: hosted', 'name: sup').replace('count: 2', 'count: 3'));
    const passes = (await health(path.join(sup, 'control.sock'))).reconcilePasses;
    expect(await waitFor(async () => (await health(path.join(sup, 'control.sock'))).reconcilePasses >= passes + 2, 15_000, 200)).toBe(true);
    expect((await cached()).length).toBe(2);
    const r = await runCli(['plan', 'apply', supPlan, '--state', sup], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Applied: 1 created/);
  });

  test('a destroyed plan is not brought back', async () => {
    const before = await statusTasks({}, sup);
    const d = await runCli(['plan', 'destroy', supPlan, '--state', sup], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
    const passes = (await health(path.join(sup, 'control.sock'))).reconcilePasses;
    expect(await waitFor(async () => (await health(path.join(sup, 'control.sock'))).reconcilePasses >= passes + 2, 15_000, 200)).toBe(true);
    expect(await cached()).toEqual([]);
    for (const t of before) expect(pidAlive(t.pid!)).toBe(false);
  });
});
