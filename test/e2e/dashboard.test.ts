/**
 * `factory dashboard` for real: a plan applied with the built CLI into a temp state, the dashboard
 * started under tmux (a private server, 100×30), the captured screen checked for the running tasks,
 * then `q`. Skipped with a reason when tmux is missing on a dev machine; fails in CI (CI is set).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BIN, pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { tickerPlan, tmuxAvailable, tmuxServer } from '../helpers/tmux.js';

const hasTmux = tmuxAvailable('dashboard');
const PLAN = tickerPlan('dash');

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
  test('shows the running tasks of an applied plan, follows views, and quits on q', async () => {
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

    tmux('send-keys', '-t', 'dash', 'q');
    expect(await waitFor(() => !/q\s+quit/.test(capture()), 5_000, 100), capture()).toBe(true);
    expect(pidAlive(pids[0]!)).toBe(true); // quitting the dashboard stops nothing
  });
});
