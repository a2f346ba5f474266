/**
 * `factory dashboard --control URL` for real: a control host (`factory control serve --listen
 * 127.0.0.1:0 --reconcile-interval 1`) serves a state with a plan applied; the dashboard runs under
 * tmux (a private server, 100×30) against the host's HTTPS address, pinned by the fingerprint the
 * host printed, with the root token. A second client (this test) kills a task: the host's
 * supervision starts it again and the dashboard shows the new pid, from the event stream. Then the
 * dashboard's own restart key runs through the API. Then a plan with a job every 2 s: the jobs view
 * shows its runs as the host runs them (from job events), and its keys suspend it and run it now
 * on the host. Skipped with a reason when tmux is missing on a dev machine; fails in CI (CI is set).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BIN, pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { tickerPlan, tmuxAvailable, tmuxServer } from '../helpers/tmux.js';

const hasTmux = tmuxAvailable('remote dashboard');
const PLAN = tickerPlan('rdash');

const scratch = scratchDir('factory-rdash-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'rdash.yaml');
const jobsPlan = path.join(scratch.dir, 'rjobs.yaml');
/** JOBS_PLAN is a job that succeeds every 2 s. */
const JOBS_PLAN = `name: rjobs
project: e2e
jobs:
  - name: tick
    schedule: "*/2 * * * * *"
    command: ["true"]
`;
const { tmux, capture, kill } = tmuxServer('rdash');
/** env keeps the user's client config (a current context) out of every run */
const env = { XDG_CONFIG_HOME: path.join(scratch.dir, 'config') };
const pids = new Set<number>();
let host: ChildProcess | undefined;
let hostLog = '';
let serverStarted = false;

afterAll(async () => {
  if (serverStarted) {
    kill();
  }
  if (host && host.exitCode === null && host.signalCode === null) {
    const gone = new Promise((r) => host!.once('exit', r));
    host.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  }
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env: { ...env, FACTORY_CONTROL: 'off' } }).catch(() => undefined);
  await runCli(['plan', 'destroy', jobsPlan, '--state', state], { cwd: scratch.dir, env: { ...env, FACTORY_CONTROL: 'off' } }).catch(() => undefined);
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

/** tasks asks the host (through its socket, as `factory status --cached`) what runs. */
async function tasks(): Promise<Map<string, { state: string; pid?: number }>> {
  const r = await runCli(['status', '--json', '--cached', '--state', state], { cwd: scratch.dir, env });
  expect(r.code, r.stderr).toBe(0);
  const out = new Map<string, { state: string; pid?: number }>();
  for (const t of (JSON.parse(r.stdout) as { tasks: { task: string; state: string; pid?: number }[] }).tasks) {
    out.set(t.task, t);
    if (t.pid) pids.add(t.pid);
  }
  return out;
}

/** rowOf is the screen's line of a task. */
const rowOf = (screen: string, task: string) => screen.split('\n').find((l) => l.includes(task)) ?? '';

describe.skipIf(!hasTmux)(`factory dashboard --control under tmux${!hasTmux ? ' (skipped: tmux is not installed)' : ''}`, () => {
  test('driven from a remote host, it shows a task that a second client kills and sees restarted, and runs and suspends a job', async () => {
    writeFileSync(plan, PLAN);
    host = spawn(BIN, ['control', 'serve', '--state', state, '--listen', '127.0.0.1:0', '--reconcile-interval', '1'], {
      cwd: scratch.dir,
      env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    host.stdout!.on('data', (d: Buffer) => (hostLog += d.toString()));
    host.stderr!.on('data', (d: Buffer) => (hostLog += d.toString()));
    const served = /serving https:\/\/(\S+) \(TLS certificate .*, SHA-256 fingerprint ([0-9A-Fa-f:]+)\)/;
    expect(await waitFor(() => served.test(hostLog), 20_000, 50), `control serve did not listen:\n${hostLog}`).toBe(true);
    const [, address, fingerprint] = served.exec(hostLog)!;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);

    // the plan is applied on the host (its socket serves this state)
    const applied = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir, env });
    expect(applied.code, `${applied.stderr}\n${hostLog}`).toBe(0);
    const before = await tasks();
    const victim = before.get('rdash/ticker/0');
    expect(victim?.state).toBe('running');
    expect(victim?.pid).toBeGreaterThan(0);
    const other = before.get('rdash/ticker/1')!;

    const url = `https://${address}`;
    const cmd = `${JSON.stringify(BIN)} dashboard --control ${url} --fingerprint ${fingerprint} --token-file ${JSON.stringify(path.join(state, 'tokens', 'root'))} --view tasks --refresh-interval 0`;
    // the dashboard runs elsewhere: a folder without a state, no FACTORY_STATE
    tmux('new-session', '-d', '-s', 'rdash', '-x', '100', '-y', '30', '-c', scratch.dir, `env -u CI -u FACTORY_STATE XDG_CONFIG_HOME=${JSON.stringify(env.XDG_CONFIG_HOME)} TERM=xterm-256color ${cmd}; sleep 30`);
    serverStarted = true;
    const shown = await waitFor(() => /rdash\/ticker\/1\s+.*running/.test(capture()), 20_000, 200);
    let screen = capture();
    expect(shown, `${screen}\n${hostLog}`).toBe(true);
    expect(rowOf(screen, 'rdash/ticker/0')).toMatch(new RegExp(`local\\s+process\\s+running\\s+.*\\b${victim!.pid}\\b`));
    expect(screen).toContain(url); // the header names the host, not a state folder
    expect(screen).toMatch(/q\s+quit/);
    expect(screen.split('\n').every((l) => l.length <= 100)).toBe(true);

    // a second client kills the task; the host's supervision starts it again (a new pid)
    process.kill(victim!.pid!, 'SIGKILL');
    let restarted: { state: string; pid?: number } | undefined;
    const back = await waitFor(
      async () => {
        restarted = (await tasks()).get('rdash/ticker/0');
        return restarted?.state === 'running' && restarted.pid !== undefined && restarted.pid !== victim!.pid;
      },
      20_000,
      250,
    );
    expect(back, `${JSON.stringify(restarted)}\n${hostLog}`).toBe(true);
    expect(hostLog).toMatch(/rdash\/ticker\/0/);
    // the dashboard sees it with --refresh-interval 0: from the event stream alone
    const seen = await waitFor(() => new RegExp(`running\\s+.*\\b${restarted!.pid}\\b`).test(rowOf(capture(), 'rdash/ticker/0')), 10_000, 200);
    screen = capture();
    expect(seen, `${screen}\n${hostLog}`).toBe(true);
    expect(rowOf(screen, 'rdash/ticker/0')).not.toMatch(new RegExp(`\\b${victim!.pid}\\b`));
    expect(rowOf(screen, 'rdash/ticker/1')).toMatch(new RegExp(`running\\s+.*\\b${other.pid}\\b`)); // the other one was left alone
    expect(screen).not.toMatch(/reconnecting/);

    // the dashboard's own restart key runs on the host, through the API
    tmux('send-keys', '-t', 'rdash', 'r');
    expect(await waitFor(() => /Restart rdash\/ticker\/0 on local\?/.test(capture()), 5_000, 100), capture()).toBe(true);
    tmux('send-keys', '-t', 'rdash', 'y');
    const said = await waitFor(() => /restarted rdash\/ticker\/0 on local \(pid \d+\)/.test(capture()), 20_000, 200);
    screen = capture();
    expect(said, `${screen}\n${hostLog}`).toBe(true);
    const newPid = Number(/restarted rdash\/ticker\/0 on local \(pid (\d+)\)/.exec(screen)![1]);
    pids.add(newPid);
    expect(newPid).not.toBe(restarted!.pid);
    expect(await waitFor(() => new RegExp(`running\\s+.*\\b${newPid}\\b`).test(rowOf(capture(), 'rdash/ticker/0')), 10_000, 200), capture()).toBe(true);
    expect((await tasks()).get('rdash/ticker/0')?.pid).toBe(newPid);
    // the host recorded who asked: the root token, not a local user
    const tokenId = readFileSync(path.join(state, 'tokens', 'root'), 'utf8').trim().split('_').slice(0, 2).join('_');
    const ev = await runCli(['events', '--control', url, '--fingerprint', fingerprint!, '--token-file', path.join(state, 'tokens', 'root'), '--since', '0', '--topic', 'task', '--json'], { cwd: scratch.dir, env });
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(new RegExp(`"kind":"task-restart-requested".*"by":"${tokenId}"`));

    // a job every 2 s: the jobs view follows its runs from the job events (no refresh interval)
    writeFileSync(jobsPlan, JOBS_PLAN);
    const jobsApplied = await runCli(['plan', 'apply', jobsPlan, '--state', state], { cwd: scratch.dir, env });
    expect(jobsApplied.code, `${jobsApplied.stderr}\n${hostLog}`).toBe(0);
    tmux('send-keys', '-t', 'rdash', '5');
    const ran = await waitFor(() => /rjobs\/tick\s+\*\/2 \* \* \* \* \*\s+\S+ \S+Z\s+succeeded\s+\d+\s+[1-9]/.test(capture()), 20_000, 200);
    screen = capture();
    expect(ran, `${screen}\n${hostLog}`).toBe(true);
    expect(screen).toContain('Runs of rjobs/tick');
    expect(screen).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+schedule\s+succeeded\s+1\s+local\s+0/);
    // s suspends it on the host
    tmux('send-keys', '-t', 'rdash', 's');
    expect(await waitFor(() => /Suspend rjobs\/tick\?/.test(capture()), 5_000, 100), capture()).toBe(true);
    tmux('send-keys', '-t', 'rdash', 'y');
    expect(await waitFor(() => /rjobs\/tick suspended/.test(capture()) && /rjobs\/tick\s+\S.*\s+suspended\s/.test(capture()), 10_000, 100), capture()).toBe(true);
    // r runs it now on the host (a manual run, shown in its runs)
    tmux('send-keys', '-t', 'rdash', 'r');
    expect(await waitFor(() => /Run rjobs\/tick now/.test(capture()), 5_000, 100), capture()).toBe(true);
    tmux('send-keys', '-t', 'rdash', 'y');
    expect(await waitFor(() => /rjobs\/tick\/\S+: started on local/.test(capture()), 10_000, 100), `${capture()}\n${hostLog}`).toBe(true);
    expect(await waitFor(() => /\s+manual\s+succeeded\s+1\s+local\s+0/.test(capture()), 10_000, 100), capture()).toBe(true);

    tmux('send-keys', '-t', 'rdash', 'q');
    expect(await waitFor(() => !/q\s+quit/.test(capture()), 5_000, 100), capture()).toBe(true);
    expect(pidAlive(newPid)).toBe(true); // quitting the dashboard stops nothing
  });
});
