/**
 * `factory control serve` with the built CLI and real processes: the CLI's plan and status commands
 * on the host's state directory run in the host through its typed HTTP API (the host records each
 * write as a `…-requested` event by the socket's user), print what a one-shot run prints, keep the
 * state file's rules (errors, no half-written state), and fall back to running themselves when the
 * host is gone or stale. A remote host over TLS (--listen) serves the same commands with tokens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { health } from '../../src/control/host-health.js';
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
}

/** the env runCli gives the CLI, so the host and its clients agree on FACTORY_* */
const cliEnv = (extra: Record<string, string> = {}) => ({ ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...extra });

async function startHost(opts: { state?: string; reconcileS?: number; listen?: boolean } = {}): Promise<Host> {
  const args = ['control', 'serve', '--state', opts.state ?? state, '--reconcile-interval', String(opts.reconcileS ?? 0), ...(opts.listen ? ['--listen', '127.0.0.1:0'] : [])];
  const child = spawn(BIN, args, { cwd: scratch.dir, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const up = await waitFor(() => /state .* \(id st-[0-9a-f]+\), pid \d+/.test(out), 15_000, 50);
  expect(up, `control serve did not start:\n${out}`).toBe(true);
  return { child, log: () => out };
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

/** requested counts the writes of a kind (`plan-apply-requested`) the host recorded, read alone from the state. */
async function requested(kind: string, dir = state): Promise<number> {
  const r = await runCli(['status', '--json', '--cached', '--events', '1000', '--state', dir], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { events: { kind: string; by?: string }[] }).events.filter((e) => e.kind === kind && e.by?.startsWith('local:')).length;
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
    expect((h as unknown as { stateDir: string }).stateDir).toBe(state);
  });

  test('plan apply runs in the host: same output, real tasks, a second apply changes nothing', async () => {
    const before = await requested('plan-apply-requested');
    const r = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Applied: 2 created, 0 updated, 0 destroyed\./);
    expect(r.stderr).toMatch(/hosted\/nap\/0 on local: started \(pid \d+\)/);
    expect(r.stderr).toMatch(/^apply done$/m);
    expect(await requested('plan-apply-requested')).toBe(before + 1);
    const tasks = await statusTasks();
    expect(tasks.map((t) => [t.task, t.state])).toEqual([
      ['hosted/nap/0', 'running'],
      ['hosted/nap/1', 'running'],
    ]);
    for (const t of tasks) expect(pidAlive(t.pid!)).toBe(true);
    const again = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/No changes\./);
    expect(await requested('plan-apply-requested')).toBe(before + 2);
  });

  test('status through the host and status run alone agree, and both name the host', async () => {
    const hosted = await statusTasks();
    const alone = await statusTasks({ FACTORY_CONTROL: 'off' });
    expect(hosted).toEqual(alone);
    const human = await runCli(['status', '--cached', '--state', state], { cwd: scratch.dir });
    expect(human.stdout).toMatch(new RegExp(`Control host: pid ${host.child.pid} since \\S+, not supervising\\.`));
    const json = await runCli(['status', '--json', '--cached', '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect(JSON.parse(json.stdout).controlHost).toMatchObject({ pid: host.child.pid, stateDir: state, reconcileIntervalMs: 0 });
  });

  test('a task killed between two commands is seen by the next one (the warm session asks the agent again)', async () => {
    const [victim] = await statusTasks();
    process.kill(victim!.pid!, 'SIGKILL');
    await waitFor(() => !pidAlive(victim!.pid!), 5000);
    const before = await requested('plan-apply-requested');
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(await requested('plan-apply-requested')).toBe(before + 1);
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
    const r = await runCli(['plan', 'apply', bad, '--state', state], { cwd: scratch.dir });
    expect(r.code).toBe(1);
    // the path as the user gave it, as a one-shot run prints it
    expect(r.stderr).toContain(`${bad}:5:5: processes[0].colour: unknown key 'colour'`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const alone = await runCli(['plan', 'apply', bad, '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect(alone.code).toBe(1);
    expect(r.stderr).toBe(alone.stderr);
    expect((await statusTasks()).length).toBe(2);
  });

  test('relative paths are the client\'s: plan and state resolve in the directory the CLI ran in', async () => {
    const r = await runCli(['plan', 'diff', 'hosted.yaml', '--state', 'state', '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
    expect(JSON.parse(r.stdout).plans).toEqual([{ name: 'hosted', project: 'e2e', file: 'hosted.yaml' }]);
    const bad = await runCli(['plan', 'diff', 'nowhere.yaml', '--state', 'state'], { cwd: scratch.dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/nowhere\.yaml/);
  });

  test('two applies at once through the host run one after the other', async () => {
    const two = path.join(scratch.dir, 'two.yaml');
    writeFileSync(two, PLAN.replace('name: hosted', 'name: twin').replace('count: 2', 'count: 1'));
    const before = await requested('plan-apply-requested');
    const [a, b] = await Promise.all([0, 1].map(() => runCli(['plan', 'apply', two, '--state', state, '--json'], { cwd: scratch.dir })));
    expect(await requested('plan-apply-requested')).toBe(before + 2);
    expect(a!.code, a!.stderr).toBe(0);
    expect(b!.code, b!.stderr).toBe(0);
    const creates = [a!, b!].map((r) => JSON.parse(r.stdout).changes.create).sort();
    expect(creates).toEqual([0, 1]);
    const d = await runCli(['plan', 'destroy', two, '--state', state], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
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
    const s = await runCli(['status', '--json', '--state', state, '--cached'], { cwd: scratch.dir });
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).controlHost.pid).toBe(host.child.pid);
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
    expect(events.stdout).toMatch(/Control host: pid \d+ since \S+, supervising the applied plans every 1 s \(\d+ pass/);
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

describe('the CLI against a remote control host over TLS', () => {
  const remoteState = path.join(scratch.dir, 'remote-state');
  const localState = path.join(scratch.dir, 'local-state');
  const qs = path.join(scratch.dir, 'quick.yaml');
  let h: Host;
  let remote: string[];

  beforeAll(async () => {
    writeFileSync(qs, PLAN.replace('name: hosted', 'name: quick').replace('project: e2e', 'project: demo'));
    h = await startHost({ state: remoteState, listen: true });
    const m = /serving (https:\/\/127\.0\.0\.1:\d+) \(TLS certificate .*, SHA-256 fingerprint ([0-9A-F:]+)\)/.exec(h.log());
    expect(m, h.log()).not.toBeNull();
    expect(readFileSync(path.join(remoteState, 'tokens', 'root'), 'utf8')).toMatch(/^fct_[0-9a-f]{12}_/);
    // another --state (nowhere) proves the state is the host's, not this directory's
    remote = ['--control', m![1]!, '--fingerprint', m![2]!, '--token-file', path.join(remoteState, 'tokens', 'root'), '--state', path.join(scratch.dir, 'nowhere')];
  });

  afterAll(async () => {
    if (h) await stopHost(h);
    for (const dir of [remoteState, localState]) await runCli(['plan', 'destroy', qs, '--state', dir], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
  });

  /**
   * same drops what differs between two runs of the same plan: pids (and the PID column's width, which
   * follows their digits: 5 in one run and 7 in the other failed a CI run), times, state ids, the control host line.
   */
  const same = (text: string) =>
    text
      .replace(/pid \d+/g, 'pid N')
      .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME')
      .replace(/st-[0-9a-f]{12}/g, 'st-ID')
      .replace(/^(TASK\s+AGENT\s+DRIVER\s+)PID +/gm, '$1PID ')
      .replace(/^(\S+\s+local\s+process\s+)\d+ +/gm, '$1N ')
      .replace(/\n\nControl host: .*\n?$/s, '\n')
      .replace(/\n\nRecent events:[\s\S]*$/, '\n');
  const shape = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(shape) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'controlHost' && k !== 'events').map(([k, x]) => [k, shape(x)]).sort(([a], [b]) => String(a).localeCompare(String(b)))) : typeof v;

  test('plan apply, status and plan destroy: the same human output and --json shape as a local run', async () => {
    const runs: Record<string, { human: string; err: string; json?: unknown }> = {};
    for (const [name, where] of [['remote', remote], ['local', ['--state', localState]]] as const) {
      const env: Record<string, string> = name === 'local' ? { FACTORY_CONTROL: 'off' } : {};
      const apply = await runCli(['plan', 'apply', 'quick.yaml', ...where], { cwd: scratch.dir, env });
      expect(apply.code, apply.stderr).toBe(0);
      const st = await runCli(['status', ...where], { cwd: scratch.dir, env });
      expect(st.code, st.stderr).toBe(0);
      for (const line of st.stdout.split('\n').filter((l) => /^quick\/nap\/\d\s/.test(l))) pids.add(Number(/process\s+(\d+)/.exec(line)![1]));
      const stJson = await runCli(['status', '--json', ...where], { cwd: scratch.dir, env });
      expect(stJson.code, stJson.stderr).toBe(0);
      const again = await runCli(['plan', 'apply', '--json', 'quick.yaml', ...where], { cwd: scratch.dir, env });
      expect(again.code, again.stderr).toBe(0);
      const destroy = await runCli(['plan', 'destroy', 'quick.yaml', ...where], { cwd: scratch.dir, env });
      expect(destroy.code, destroy.stderr).toBe(0);
      runs[name] = {
        human: [apply.stdout, st.stdout, destroy.stdout].map(same).join('\n---\n'),
        err: same(apply.stderr.replace(/^  quick\/nap\/\d on local: started.*\n/gm, '')),
        json: { status: shape(JSON.parse(stJson.stdout)), apply: shape(JSON.parse(again.stdout)) },
      };
    }
    expect(runs.remote!.human).toMatch(/Applied: 2 created, 0 updated, 0 destroyed\./);
    expect(runs.remote!.human).toMatch(/Destroyed 2 tasks\./);
    expect(runs.remote!.human).toBe(runs.local!.human);
    expect(runs.remote!.err).toBe(runs.local!.err);
    expect(runs.remote!.json).toEqual(runs.local!.json);
    // the host ran it, for the root token
    const ev = await runCli(['status', '--json', '--cached', '--events', '100', '--state', remoteState], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect((JSON.parse(ev.stdout).events as { kind: string; by?: string }[]).some((e) => e.kind === 'plan-apply-requested' && /^fct_/.test(e.by ?? ''))).toBe(true);
  });

  test("a project token cannot see or apply another project's plan", async () => {
    const apply = await runCli(['plan', 'apply', 'quick.yaml', ...remote], { cwd: scratch.dir });
    expect(apply.code, apply.stderr).toBe(0);
    const made = await runCli(['tokens', 'create', '--project', 'x', '--scope', 'write', ...remote], { cwd: scratch.dir });
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^fct_[0-9a-f]{12}_\S+$/);
    const file = path.join(scratch.dir, 'x.token');
    writeFileSync(file, token, { mode: 0o600 });
    const asX = remote.map((a, i) => (remote[i - 1] === '--token-file' ? file : a));
    const denied = await runCli(['plan', 'apply', 'quick.yaml', ...asX], { cwd: scratch.dir });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/factory: plan quick \(quick\.yaml\) is outside project x/);
    expect(denied.stderr).not.toMatch(/\n\s+at /);
    const st = await runCli(['status', '--json', '--cached', ...asX], { cwd: scratch.dir });
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout).tasks).toEqual([]);
    const logs = await runCli(['logs', 'quick/nap/0', ...asX], { cwd: scratch.dir });
    expect(logs.code).not.toBe(0);
    expect(logs.stderr).toMatch(/no task 'quick\/nap\/0'/);
    const list = await runCli(['tokens', 'list', '--json', ...remote], { cwd: scratch.dir });
    expect((JSON.parse(list.stdout).tokens as { id: string; project?: string }[]).find((t) => token.startsWith(`${t.id}_`))).toMatchObject({ project: 'x', scope: 'write' });
    const d = await runCli(['plan', 'destroy', 'quick.yaml', ...remote], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
  });
});
