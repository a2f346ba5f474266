/**
 * `factory dashboard` for real: a plan applied with the built CLI into a temp state, the dashboard
 * started under tmux (a private server, 100×30), the captured screen checked for the running tasks,
 * then `q`. Skipped with a reason when tmux is missing on a dev machine; fails in CI (CI is set).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BIN, pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux && process.env.CI) throw new Error('tmux is required in CI for the dashboard end-to-end test (apt-get install tmux)');
if (!hasTmux) process.stderr.write('dashboard e2e skipped: tmux is not installed (apt-get install tmux)\n');

const PLAN = `name: dash
project: e2e
processes:
  - name: ticker
    count: 2
    command: ["sh", "-c", "while true; do echo tick $FACTORY_TASK; sleep 1; done"]
    resources: {cpus: 0.1, mem: 16Mi}
`;

const scratch = scratchDir('factory-dash-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'dash.yaml');
const socket = `factory-dash-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const capture = () => tmux('capture-pane', '-p', '-t', 'dash');
let serverStarted = false;

afterAll(async () => {
  if (serverStarted) {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
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
