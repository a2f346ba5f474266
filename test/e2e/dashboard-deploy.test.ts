/**
 * The dashboard shows a real deployment and a real crash loop (issue 14): a control host (`factory
 * control serve --listen 127.0.0.1:0 --reconcile-interval 1`) rolls a group of 3 processes with
 * canary 1 to a new version; two dashboards under tmux (a private server, 120×30) — one following the
 * state folder (the state worker), one through the host's API (`--control`, the root token) — both
 * open on the deployments view. Both show the deployment waiting for promotion with its counts
 * (3 old, 1 new, 1 healthy) and the canary in its tasks; `factory deploy promote` then rolls the
 * rest: both show it running with fewer old tasks, then succeeded with 0 old. A second plan's process exits 1 at once under
 * `restart: always`: both tasks views show it as crash-loop with its next restart. Skipped with a
 * reason when tmux is missing on a dev machine; fails in CI (CI is set).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BIN, runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { hostGet, startControlHost, type RunningHost } from '../helpers/control-host.js';
import { tmuxAvailable, tmuxServer } from '../helpers/tmux.js';

const hasTmux = tmuxAvailable('deployments dashboard');
const scratch = scratchDir('factory-ddash-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'roll.yaml');
const crashPlan = path.join(scratch.dir, 'crashy.yaml');
/** env keeps the user's client config out, and steps deployments every 200 ms */
const env = { XDG_CONFIG_HOME: path.join(scratch.dir, 'config'), FACTORY_DEPLOY_TICK_MS: '200' };
const { tmux, kill } = tmuxServer('ddash');
let host: RunningHost | undefined;
let serverStarted = false;

/** planText is a group of 3 whose tasks write their version to `ready` once up (its health check). */
function planText(version: string): string {
  return `name: roll
project: e2e
update: {maxParallel: 1, maxSurge: 1, minHealthyTime: 1s, healthyDeadline: 20s, canary: 1}
processes:
  - name: web
    count: 3
    command: ["sh", "-c", "sleep 0.3; echo \\"$V\\" > ready; exec sleep 600"]
    env: {V: "${version}"}
    resources: {cpus: 0.05, mem: 16Mi}
    stopGrace: 1s
    health: {command: ["test", "-s", "ready"], interval: 200ms}
`;
}

/** CRASHY is a process that exits 1 as soon as it starts, restarted always, 4 s then 8 s … apart. */
const CRASHY = `name: crashy
project: e2e
processes:
  - name: crash
    restart: always
    restartBackoff: {initial: 4s, factor: 2, max: 16s}
    command: ["sh", "-c", "exit 1"]
    resources: {cpus: 0.05, mem: 16Mi}
`;

afterAll(async () => {
  if (serverStarted) kill();
  for (const p of [plan, crashPlan]) await runCli(['plan', 'destroy', p, '--state', state], { cwd: scratch.dir, env, timeoutMs: 60_000 }).catch(() => undefined);
  await host?.stop();
  scratch.cleanup();
});

/** screen is a tmux session's pane; rowOf its line holding text. */
const screen = (session: string) => tmux('capture-pane', '-p', '-t', session);
const rowOf = (text: string, needle: string) => text.split('\n').find((l) => l.includes(needle)) ?? '';

/** healthyTasks counts the group's tasks the host records as healthy and running. */
async function healthyTasks(): Promise<number> {
  const { tasks } = await hostGet<{ tasks: { group: string; state: string; health?: string }[] }>(state, '/v1/tasks?plan=roll');
  return tasks.filter((t) => t.state === 'running' && t.health === 'healthy').length;
}

/** deployment is one deployment as the host reports it. */
async function deployment(id: string): Promise<{ status: string; old: number; tasks: { state: string }[] }> {
  return (await hostGet<{ deployment: { status: string; old: number; tasks: { state: string }[] } }>(state, `/v1/deployments/${id}`)).deployment;
}

describe.skipIf(!hasTmux)(`factory dashboard shows deployments and crash loops under tmux${!hasTmux ? ' (skipped: tmux is not installed)' : ''}`, () => {
  test('a canary deployment waiting for promotion, then rolled, and a crash-looping task, in a local and a remote dashboard', async () => {
    fs.mkdirSync(state, { recursive: true });
    host = await startControlHost(state, { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env }, reconcileS: 1, listen: '127.0.0.1:0' });
    expect(host.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    fs.writeFileSync(plan, planText('1'));
    const first = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir, env, timeoutMs: 60_000 });
    expect(first.code, `${first.stderr}\n${host.log()}`).toBe(0);
    expect(await waitFor(async () => (await healthyTasks()) === 3, 30_000, 200), host.log()).toBe(true);

    // the new version: canary 1 starts beside the 3 old tasks and waits for promotion
    fs.writeFileSync(plan, planText('2'));
    const applied = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir, env, timeoutMs: 60_000 });
    expect(applied.code, applied.stderr).toBe(0);
    const id = (JSON.parse(applied.stdout) as { deployments: { id: string }[] }).deployments[0]!.id;
    expect(id).toMatch(/^dep-[0-9a-f]{10}$/);

    // the crash loop, on the same host
    fs.writeFileSync(crashPlan, CRASHY);
    const crash = await runCli(['plan', 'apply', crashPlan, '--state', state], { cwd: scratch.dir, env });
    // the process may be seen running (exit 0) or already failed (exit 3: a task failed to start)
    expect([0, 3], crash.stderr).toContain(crash.code);

    const dashEnv = `env -u CI -u FACTORY_STATE XDG_CONFIG_HOME=${JSON.stringify(env.XDG_CONFIG_HOME)} TERM=xterm-256color`;
    const local = `${JSON.stringify(BIN)} dashboard --state ${JSON.stringify(state)} --view deployments --refresh-interval 0`;
    const remote = `${JSON.stringify(BIN)} dashboard --control ${host.url} --fingerprint ${host.fingerprint} --token-file ${JSON.stringify(path.join(state, 'tokens', 'root'))} --view deployments --refresh-interval 0`;
    tmux('new-session', '-d', '-s', 'local', '-x', '120', '-y', '30', '-c', scratch.dir, `${dashEnv} ${local}; sleep 60`);
    serverStarted = true;
    tmux('new-session', '-d', '-s', 'remote', '-x', '120', '-y', '30', '-c', scratch.dir, `${dashEnv} ${remote}; sleep 60`);

    // waiting for promotion: 3 old, 1 new, 1 healthy, in both; the canary in the pane below
    const waiting = new RegExp(`${id}\\s+roll/web\\s+waiting-promotion\\s+3\\s+1\\s+1\\s+\\d+s\\s+factory deploy promote ${id}`);
    for (const s of ['local', 'remote']) {
      const seen = await waitFor(() => waiting.test(screen(s)), 40_000, 200);
      const text = screen(s);
      expect(seen, `${s}:\n${text}\n${JSON.stringify(await deployment(id))}\n${host.log()}`).toBe(true);
      expect(text).toContain('6 Deploys');
      expect(text).toMatch(/deploying 1 \(1 to promote\)/);
      expect(text).toContain(`${id} roll/web: waiting-promotion · 3 old, 1 new, 1 healthy (a group of 3); canaries not promoted`);
      expect(text).toMatch(/roll\/web\/3\s+healthy\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+canary/);
      expect(text.split('\n').every((l) => l.length <= 120)).toBe(true);
    }
    expect((await deployment(id)).status).toBe('waiting-promotion');

    // promoted: the rest rolls, one task at a time (each healthy for 1 s); both dashboards follow its
    // counts (every row seen is kept), then show it succeeded with no task left on the old spec
    const row = new RegExp(`${id}\\s+roll/web\\s+(\\S+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s`);
    const seen: Record<string, Set<string>> = { local: new Set(), remote: new Set() };
    const watch = setInterval(() => {
      for (const s of ['local', 'remote']) {
        const m = row.exec(screen(s));
        if (m) seen[s]!.add(m.slice(1).join(' '));
      }
    }, 100);
    try {
      const promoted = await runCli(['deploy', 'promote', id, '--state', state], { cwd: scratch.dir, env });
      expect(promoted.code, promoted.stderr).toBe(0);
      expect(await waitFor(async () => (await deployment(id)).status === 'succeeded', 60_000, 200), JSON.stringify(await deployment(id))).toBe(true);
      const done = await deployment(id);
      const healthy = done.tasks.filter((t) => t.state === 'healthy').length;
      expect(healthy).toBeGreaterThanOrEqual(3);
      for (const s of ['local', 'remote']) {
        const shown = await waitFor(() => seen[s]!.has(`succeeded 0 ${healthy} ${healthy}`), 20_000, 100);
        expect(shown, `${s}:\n${screen(s)}\n${JSON.stringify(done)}\n${[...seen[s]!].join('; ')}`).toBe(true);
        expect(screen(s)).not.toMatch(/deploying \d/);
      }
    } finally {
      clearInterval(watch);
    }
    console.log(`deployment rows seen: local ${[...seen.local!].join('; ')} | remote ${[...seen.remote!].join('; ')}`);
    // between the promotion and the end, each showed the roll under way: running, fewer than 3 old
    for (const s of ['local', 'remote']) expect([...seen[s]!].some((r) => /^running [0-2] \d+ \d+$/.test(r)), `${s}: ${[...seen[s]!].join('; ')}`).toBe(true);

    // the crash loop in the tasks view: crash-loop and its next restart, as factory status shows it
    // (the first row; Enter opens its detail, where the next restart is not cut by the width)
    const looping = /crashy\/crash\/0\s+crash\s+e2e\s+local\s+process\s+crash-loop\s+-\s+-\s+-\s+exit 1;/;
    const detail = /state crash-loop \((exited|failed)\)[\s\S]*exit 1; (restart \d+ at \d\d:\d\d:\d\dZ \((in \d+s|due)\)|\d+ restarts, next at the next pass)/;
    for (const s of ['local', 'remote']) {
      tmux('send-keys', '-t', s, '3');
      const seen = await waitFor(() => looping.test(rowOf(screen(s), 'crashy/crash/0')), 40_000, 200);
      expect(seen, `${s}:\n${screen(s)}\n${host.log()}`).toBe(true);
      expect(screen(s)).toMatch(/tasks \d+ \(\d+ running, 1 crash-loop/);
      tmux('send-keys', '-t', s, 'Enter');
      // between a restart and its next death the task may show running a moment: the loop comes back
      expect(await waitFor(() => detail.test(screen(s)), 30_000, 200), `${s}:\n${screen(s)}`).toBe(true);
    }
    const st = await runCli(['status', '--json', '--cached', '--state', state], { cwd: scratch.dir, env });
    expect((JSON.parse(st.stdout) as { tasks: { task: string; crashLoop?: boolean }[] }).tasks.find((t) => t.task === 'crashy/crash/0')).toMatchObject({ crashLoop: true });

    for (const s of ['local', 'remote']) {
      tmux('send-keys', '-t', s, 'q');
      expect(await waitFor(() => !/q\s+quit/.test(screen(s)), 5_000, 100), screen(s)).toBe(true);
    }
  }, 180_000);
});
