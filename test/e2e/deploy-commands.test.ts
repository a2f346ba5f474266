/**
 * `factory deploy pause|resume|revert|abort|status|list` on real processes through a real control
 * host (issue 14): a group of 3 rolled one task at a time with a long minHealthyTime (2 s) is paused
 * while its first task is in flight (that task finishes its health gate, no other task changes spec
 * for longer than a batch takes), then resumed (it completes); another rollout is reverted (all 3
 * back on the old spec) and a third aborted (the group stays mixed, status aborted).
 *
 * A task writes its version to `ready` once up; the group's health check reads it. What runs is read
 * from the local agent's task folders (a live pid and its `ready` file), not from the state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { hostGet, startControlHost, type RunningHost } from '../helpers/control-host.js';

const scratch = scratchDir('factory-deploy-cmds-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'ops.yaml');
const env = { FACTORY_DEPLOY_TICK_MS: '200' };
const UPDATE = 'maxParallel: 1, maxSurge: 0, minHealthyTime: 2s, healthyDeadline: 30s, progressDeadline: 60s';
let host: RunningHost;

function planText(version: string): string {
  return `name: ops
update: {${UPDATE}}
processes:
  - name: web
    count: 3
    command: ["sh", "-c", "sleep 0.2; echo \\"$V\\" > ready; exec sleep 600"]
    env: {V: "${version}"}
    resources: {cpus: 0.05, mem: 16Mi}
    stopGrace: 1s
    health: {command: ["test", "-s", "ready"], interval: 200ms}
`;
}

/** running is each live task's version (its `ready` file, '' while starting) and pid, by task folder. */
function running(): Record<string, { version: string; pid: number }> {
  const out: Record<string, { version: string; pid: number }> = {};
  const dir = path.join(state, 'agents', 'local', 'tasks');
  for (const n of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const pid = Number(fs.readFileSync(path.join(dir, n, 'pid'), { encoding: 'utf8', flag: 'r' }).trim() || NaN);
    if (!Number.isInteger(pid) || !pidAlive(pid)) continue;
    let version = '';
    try {
      version = fs.readFileSync(path.join(dir, n, 'ready'), 'utf8').trim();
    } catch {
      /* starting */
    }
    out[n.replace(/_[0-9a-f]{8}$/, '')] = { version, pid };
  }
  return out;
}

/** versions counts the live tasks by version ('' while starting). */
function versions(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of Object.values(running())) out[t.version] = (out[t.version] ?? 0) + 1;
  return out;
}

interface Dep {
  id: string;
  status: string;
  message?: string;
  revertedBy?: string;
  tasks: { task: string; state: string }[];
}

/** deployment reads one deployment from the control host's socket. */
async function deployment(id: string): Promise<Dep> {
  return (await hostGet<{ deployment: Dep }>(state, `/v1/deployments/${id}`)).deployment;
}

async function cli(args: string[]) {
  const r = await runCli([...args, '--state', state], { cwd: scratch.dir, env, timeoutMs: 60_000 });
  return { ...r, doc: r.stdout.trim().startsWith('{') ? JSON.parse(r.stdout) : undefined };
}

/** rollTo applies the plan at `version` and returns the deployment it started. */
async function rollTo(version: string): Promise<string> {
  fs.writeFileSync(plan, planText(version));
  const r = await cli(['plan', 'apply', plan, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return r.doc.deployments[0].id as string;
}

const healthyCount = async (id: string) => (await deployment(id)).tasks.filter((t) => t.state === 'healthy').length;

beforeAll(async () => {
  fs.mkdirSync(state, { recursive: true });
  host = await startControlHost(state, { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env } });
  fs.writeFileSync(plan, planText('1'));
  const r = await cli(['plan', 'apply', plan, '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(await waitFor(() => versions()['1'] === 3, 20_000, 100)).toBe(true);
}, 30_000);

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env, timeoutMs: 60_000 });
  await host?.stop();
  scratch.cleanup();
});

test('pause holds the rollout (the task in flight finishes its gate, no new batch), resume completes it', async () => {
  const id = await rollTo('2');
  expect(await waitFor(async () => (await deployment(id)).tasks.length >= 1, 10_000, 50)).toBe(true);
  const paused = await cli(['deploy', 'pause', id, '--json']);
  expect(paused.code, paused.stderr).toBe(0);
  expect(paused.doc.deployment).toMatchObject({ id, status: 'paused' });
  expect((await cli(['deploy', 'pause', id])).stderr).toMatch(/paused already/);
  // the first task was not counted yet when paused; it finishes its gate, and for longer than the
  // 2 s a batch takes no other task changes spec
  const before = running();
  const inFlight = (await deployment(id)).tasks.map((t) => t.task);
  expect(inFlight).toHaveLength(1);
  const t0 = Date.now();
  const seen: Record<string, number>[] = [];
  while (Date.now() - t0 < 4000) {
    seen.push(versions());
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const v of seen) expect(v['2'] ?? 0, JSON.stringify(seen)).toBeLessThanOrEqual(1);
  const old = Object.keys(before).filter((t) => before[t]!.version === '1');
  expect(old).toHaveLength(2);
  const held = running();
  for (const t of old) expect(held[t]?.pid, t).toBe(before[t]!.pid);
  const during = await deployment(id);
  expect(during.status).toBe('paused');
  expect(during.tasks).toEqual([expect.objectContaining({ task: inFlight[0], state: 'healthy' })]);

  const resumed = await cli(['deploy', 'resume', id.slice(4, 10), '--json']);
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.doc.deployment.status).toBe('running');
  expect(await waitFor(async () => (await deployment(id)).status === 'succeeded', 30_000, 200)).toBe(true);
  expect(await waitFor(() => versions()['2'] === 3 && Object.keys(running()).length === 3, 5000, 100)).toBe(true);
  // resume of a deployment that ended is refused with its code
  const late = await cli(['deploy', 'resume', id, '--json']);
  expect(late.code).toBe(1);
  expect(late.stderr).toContain('it has finished');
  expect(late.doc.error.code).toBe('E_DEPLOYMENT_FINISHED');

  const st = await cli(['deploy', 'status', id]);
  expect(st.code, st.stderr).toBe(0);
  expect(st.stdout).toContain(`${id}  ops/web`);
  expect(st.stdout).toMatch(/deployment-paused \(local:[^)]+\)/);
  expect(st.stdout).toMatch(/deployment-resumed \(local:[^)]+\)/);
  expect(st.stdout).toContain('deployment-succeeded');
}, 60_000);

test('revert: the task already on the new spec goes back, all 3 on the old spec, status reverted', async () => {
  const id = await rollTo('3');
  expect(await waitFor(async () => (await healthyCount(id)) >= 1, 15_000, 100)).toBe(true);
  const r = await cli(['deploy', 'revert', id, '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.doc.deployment).toMatchObject({ id, status: 'reverted' });
  const back = r.doc.deployment.revertedBy as string;
  expect(back).toMatch(/^dep-/);
  expect(await waitFor(async () => (await deployment(back)).status === 'succeeded', 30_000, 200), JSON.stringify(await deployment(back))).toBe(true);
  expect(await waitFor(() => versions()['2'] === 3 && Object.keys(running()).length === 3, 5000, 100)).toBe(true);
  expect((await deployment(id)).status).toBe('reverted');
  // the plan's record is back on version 2: supervision keeps it there
  await new Promise((res) => setTimeout(res, 1000));
  expect(versions()).toEqual({ '2': 3 });
}, 60_000);

test('abort: the rollout stops where it stands, the group stays mixed, status aborted', async () => {
  const id = await rollTo('4');
  expect(await waitFor(async () => (await healthyCount(id)) >= 1, 15_000, 100)).toBe(true);
  const r = await cli(['deploy', 'abort', id, '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.doc.deployment).toMatchObject({ id, status: 'aborted' });
  // whatever was in flight finishes starting; then nothing moves
  await new Promise((res) => setTimeout(res, 1000));
  const settled = running();
  const mixed = versions();
  expect(mixed['4'] ?? 0).toBeGreaterThanOrEqual(1);
  expect(mixed['2'] ?? 0).toBeGreaterThanOrEqual(1);
  await new Promise((res) => setTimeout(res, 3000));
  expect(running()).toEqual(settled);
  expect((await deployment(id)).status).toBe('aborted');
  const list = await cli(['deploy', 'list', '--json']);
  expect(list.doc.deployments.map((d: Dep) => d.status).slice(0, 1)).toEqual(['aborted']);
  const human = await cli(['deploy', 'list']);
  expect(human.stdout).toMatch(new RegExp(`${id}\\s+ops/web\\s+aborted`));
}, 60_000);
