/**
 * `factory dashboard` for real: a plan applied with the built CLI into a temp state, the dashboard
 * started under tmux (a private server, 100×30), the captured screen checked for the running tasks
 * and the plan's job (suspended from the jobs view; a run now refused with no control host), then
 * `q`. Skipped with a reason when tmux is missing on a dev machine; fails in CI (CI is set).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BIN, pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { tickerPlan, tmuxAvailable, tmuxServer } from '../helpers/tmux.js';

const hasTmux = tmuxAvailable('dashboard');
/** PLAN is the ticker plan with a daily job (recorded by apply; nothing runs it without a control host). */
const PLAN = `${tickerPlan('dash')}jobs:
  - name: nightly
    schedule: "30 2 * * *"
    command: ["true"]
`;

const scratch = scratchDir('factory-dash-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'dash.yaml');
const { tmux, capture, kill } = tmuxServer('dash');
let serverStarted = false;

afterAll(async () => {
  if (serverStarted) {
    kill();
  }
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir }).catch(() => undefined);
  scratch.cleanup();
});

describe.skipIf(!hasTmux)(`factory dashboard under tmux${!hasTmux ? ' (skipped: tmux is not installed)' : ''}`, () => {
  test('shows the running tasks of an applied plan, follows views, suspends the plan\'s job, and quits on q', async () => {
    writeFileSync(plan, PLAN);
    const applied = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(applied.code, applied.stderr).toBe(0);
    const pids = (JSON.parse(applied.stdout) as { results: { pid?: number }[] }).results.map((r) => r.pid).filter((p): p is number => Boolean(p));
    expect(pids).toHaveLength(2);

    const cmd = `${JSON.stringify(BIN)} dashboard --state ${JSON.stringify(state)} --view tasks --refresh-interval 2`;
    tmux('new-session', '-d', '-s', 'dash', '-x', '100', '-y', '30', '-c', scratch.dir, `env -u CI TERM=xterm-256color ${cmd}; sleep 30`);
    serverStarted = true;
    const shown = await waitFor(() => /dash\/ticker\/1\s+.*running/.test(capture()), 20_000, 200);
    const screen = capture();
    expect(shown, screen).toBe(true);
    expect(screen).toMatch(/dash\/ticker\/0\s+.*local\s+process\s+running/);
    expect(screen).toContain(String(pids[0]));
    expect(screen).toMatch(/q\s+quit/);
    expect(screen.split('\n').every((l) => l.length <= 100)).toBe(true);

    tmux('send-keys', '-t', 'dash', '1');
    expect(await waitFor(() => /local\s+1 ag\s+2 tk/.test(capture()), 5_000, 100), capture()).toBe(true);

    // the dashboard follows the state: a kill shows up after the next refresh
    process.kill(pids[1]!, 'SIGKILL');
    tmux('send-keys', '-t', 'dash', '3');
    expect(await waitFor(() => /dash\/ticker\/1\s+.*(exited|failed)/.test(capture()), 15_000, 200), capture()).toBe(true);

    // the jobs view: the plan's job from the state's job tables; s suspends it, in the state
    tmux('send-keys', '-t', 'dash', '5');
    expect(await waitFor(() => /dash\/nightly\s+30 2 \* \* \*\s+-\s+-\s+0\s+0\s+0\s+0\s+0/.test(capture()), 5_000, 100), capture()).toBe(true);
    expect(capture()).toContain('Runs of dash/nightly');
    tmux('send-keys', '-t', 'dash', 's');
    expect(await waitFor(() => /Suspend dash\/nightly\?/.test(capture()), 5_000, 100), capture()).toBe(true);
    tmux('send-keys', '-t', 'dash', 'y');
    expect(await waitFor(() => /dash\/nightly suspended/.test(capture()) && /dash\/nightly\s+30 2 \* \* \*\s+suspended/.test(capture()), 10_000, 100), capture()).toBe(true);
    const listed = await runCli(['jobs', 'list', '--state', state, '--json'], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).jobs).toMatchObject([{ id: 'dash/nightly', suspended: true }]);
    // a run now needs a control host: none serves this state, and the status line says so
    tmux('send-keys', '-t', 'dash', 'r');
    expect(await waitFor(() => /Run dash\/nightly now/.test(capture()), 5_000, 100), capture()).toBe(true);
    tmux('send-keys', '-t', 'dash', 'y');
    expect(await waitFor(() => /none serves this state/.test(capture()), 10_000, 100), capture()).toBe(true);

    tmux('send-keys', '-t', 'dash', 'q');
    expect(await waitFor(() => !/q\s+quit/.test(capture()), 5_000, 100), capture()).toBe(true);
    expect(pidAlive(pids[0]!)).toBe(true); // quitting the dashboard stops nothing
  });
});
