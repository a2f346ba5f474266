/**
 * Deployments on real processes with a real control host (issue 14): a group of 6 rolled to a good
 * version with maxParallel 2 and maxSurge 1 never has fewer than 6 healthy tasks (sampled every
 * 100 ms from the agent itself, through the whole deployment) and ends with all 6 on the new spec; a
 * version that fails its health check stops at the first batch, the other old tasks keep running,
 * and autoRevert brings the first batch back.
 *
 * Canary 1 waits for `factory deploy promote`; a control host killed -9 mid-deployment is replaced by a
 * new one that carries the deployment on from where it stood.
 *
 * Health is the group's check (`test -s ready`): a task writes its version to `ready` once up (the
 * bad version never does). The sampler reads each task folder of the local agent: a live pid and a
 * `ready` file is a healthy task of that version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { hostGet, startControlHost, type RunningHost } from '../helpers/control-host.js';
import { sampleEvery } from '../helpers/sample-every.js';

const scratch = scratchDir('factory-deploy-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'roll.yaml');
const env = { FACTORY_DEPLOY_TICK_MS: '200' };
let host: RunningHost;

/** planText is the plan of the group of 6: `version` is written to `ready` once up (never for 'bad'). */
function planText(version: string, update: string): string {
  const up = version === 'bad' ? 'exec sleep 600' : 'sleep 0.3; echo "$V" > ready; exec sleep 600';
  return `name: roll
update: {${update}}
processes:
  - name: web
    count: 6
    command: ["sh", "-c", ${JSON.stringify(up)}]
    env: {V: "${version}"}
    resources: {cpus: 0.05, mem: 16Mi}
    stopGrace: 1s
    health: {command: ["test", "-s", "ready"], interval: 200ms}
`;
}

const SURGE = 'maxParallel: 2, maxSurge: 1, minHealthyTime: 1s, healthyDeadline: 20s, progressDeadline: 60s';

/** Sample is what the agent's task folders say at one moment: healthy tasks by version, and every live task. */
interface Sample {
  at: number;
  healthy: number;
  live: number;
  versions: Record<string, number>;
  pids: Record<string, number>;
  /** ready is each healthy task's version, by task folder name (without the state's suffix). */
  ready: Record<string, string>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** sample reads the local agent's task folders: the truth on the host, not what the state says. */
function sample(): Sample {
  const out: Sample = { at: Date.now(), healthy: 0, live: 0, versions: {}, pids: {}, ready: {} };
  const tasksDir = path.join(state, 'agents', 'local', 'tasks');
  let names: string[] = [];
  try {
    names = fs.readdirSync(tasksDir);
  } catch {
    return out;
  }
  for (const n of names) {
    const dir = path.join(tasksDir, n);
    let pid = NaN;
    try {
      pid = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || !pidAlive(pid)) continue;
    out.live++;
    out.pids[n.replace(/_[0-9a-f]{8}$/, '')] = pid;
    let ready = '';
    try {
      ready = fs.readFileSync(path.join(dir, 'ready'), 'utf8').trim();
    } catch {
      /* not up (yet) */
    }
    if (ready) {
      out.healthy++;
      out.versions[ready] = (out.versions[ready] ?? 0) + 1;
      out.ready[n.replace(/_[0-9a-f]{8}$/, '')] = ready;
    }
  }
  return out;
}

/** sampling samples every 100 ms until stopped. */
function sampling(): { stop: () => Sample[] } {
  return sampleEvery(sample, 100);
}

async function apply(version: string, update: string, extra: string[] = []) {
  fs.writeFileSync(plan, planText(version, update));
  const r = await runCli(['plan', 'apply', plan, '--state', state, '--json', ...extra], { cwd: scratch.dir, env, timeoutMs: 120_000 });
  return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
}

/** deployment reads one deployment from the control host (its socket: trusted without a token). */
async function deployment(id: string): Promise<{ id: string; status: string; tasks: { task: string; state: string }[]; old: number; message?: string }> {
  return (await hostGet<{ deployment: { id: string; status: string; tasks: { task: string; state: string }[]; old: number; message?: string } }>(state, `/v1/deployments/${id}`)).deployment;
}

async function events(): Promise<{ kind: string; message: string; deployment?: string }[]> {
  const r = await runCli(['events', '--state', state, '--json', '--topic', 'deployment'], { cwd: scratch.dir, env });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

beforeAll(async () => {
  fs.mkdirSync(state, { recursive: true });
  host = await startControlHost(state, { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env } });
  const first = await apply('1', SURGE);
  expect(first.code, first.stderr).toBe(0);
  // a first apply creates: no deployment
  expect(first.doc.deployments).toBeUndefined();
  expect(await waitFor(() => sample().versions['1'] === 6, 20_000, 100)).toBe(true);
}, 60_000);

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env, timeoutMs: 60_000 });
  await host?.stop();
  scratch.cleanup();
});

describe('a group of 6, maxParallel 2, maxSurge 1', () => {
  test('rolled to a good version: never fewer than 6 healthy, all 6 on the new spec at the end', async () => {
    const s = sampling();
    const t0 = Date.now();
    const r = await apply('2', SURGE, ['--wait']);
    const took = Date.now() - t0;
    const samples = s.stop();
    expect(r.code, r.stderr).toBe(0);
    const [d] = r.doc.deployments;
    expect(d).toMatchObject({ plan: 'roll', group: 'web', status: 'succeeded', started: true, healthy: 7, old: 0 });
    expect(d.id).toMatch(/^dep-[0-9a-f]{10}$/);
    // plan apply prints the id; the progress went to stderr
    expect(r.stderr).toMatch(new RegExp(`${d.id} roll/web: running, \\d new healthy`));
    const minHealthy = Math.min(...samples.map((x) => x.healthy));
    const maxLive = Math.max(...samples.map((x) => x.live));
    console.log(`good version: ${samples.length} samples over ${took} ms; healthy min ${minHealthy}, live tasks max ${maxLive}`);
    expect(samples.length).toBeGreaterThan(20);
    expect(minHealthy).toBeGreaterThanOrEqual(6);
    expect(maxLive).toBeLessThanOrEqual(7);
    const end = sample();
    expect(end).toMatchObject({ healthy: 6, live: 6, versions: { '2': 6 } });
    expect(Object.keys(end.pids).sort()).toEqual(['roll.web.0', 'roll.web.1', 'roll.web.2', 'roll.web.3', 'roll.web.4', 'roll.web.5']);
    const kinds = (await events()).filter((e) => e.deployment === d.id).map((e) => e.kind);
    expect(kinds[0]).toBe('deployment-started');
    expect(kinds.filter((k) => k === 'deployment-task-healthy')).toHaveLength(7);
    expect(kinds.at(-1)).toBe('deployment-succeeded');
    // a second apply of the same plan changes nothing and starts nothing
    const again = await apply('2', SURGE);
    expect(again.code, again.stderr).toBe(0);
    expect(again.doc.changes).toEqual({ create: 0, destroy: 0, update: 0 });
    expect(again.doc.deployments).toBeUndefined();
  }, 120_000);

  test('a version that fails its health check stops on its extra task; the 6 old keep running; autoRevert removes it', async () => {
    const before = sample();
    const s = sampling();
    const r = await apply('bad', `${SURGE}, autoRevert: true`, ['--wait']);
    const samples = s.stop();
    expect(r.code).toBe(1);
    const [d] = r.doc.deployments;
    expect(d.status).toBe('reverted');
    expect(d.message).toMatch(/^roll\/web\/6 unhealthy: \d+ failed checks$/);
    expect(d.revertedBy).toMatch(/^dep-/);
    console.log(`bad version, surge: ${samples.length} samples; healthy min ${Math.min(...samples.map((x) => x.healthy))}, live max ${Math.max(...samples.map((x) => x.live))}`);
    expect(Math.min(...samples.map((x) => x.healthy))).toBeGreaterThanOrEqual(6);
    const end = sample();
    expect(end).toMatchObject({ healthy: 6, live: 6, versions: { '2': 6 } });
    // the old tasks were never touched
    expect(end.pids).toEqual(before.pids);
    const kinds = (await events()).filter((e) => e.deployment === d.id || e.deployment === d.revertedBy).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['deployment-started', 'deployment-task-failed', 'deployment-failed', 'deployment-reverted', 'deployment-succeeded']));
  }, 120_000);
});

describe('maxSurge 0: batches of maxParallel replace in place', () => {
  test('a bad version fails on the first batch of 2, the other 4 keep running, autoRevert brings the 2 back', async () => {
    const before = sample();
    const s = sampling();
    const r = await apply('bad', 'maxParallel: 2, maxSurge: 0, minHealthyTime: 1s, healthyDeadline: 20s, autoRevert: true', ['--wait']);
    const samples = s.stop();
    expect(r.code).toBe(1);
    const [d] = r.doc.deployments;
    expect(d.status).toBe('reverted');
    // both of the batch fail; the step that sees the first one ends the deployment
    expect(d.message).toMatch(/^roll\/web\/[01] unhealthy: \d+ failed checks(; roll\/web\/1 unhealthy: \d+ failed checks)?$/);
    const minHealthy = Math.min(...samples.map((x) => x.healthy));
    console.log(`bad version, no surge: ${samples.length} samples; healthy min ${minHealthy}, live max ${Math.max(...samples.map((x) => x.live))}`);
    // the batch of 2 stopped first: capacity dipped by 2, never more
    expect(minHealthy).toBe(4);
    expect(Math.max(...samples.map((x) => x.live))).toBeLessThanOrEqual(6);
    const end = sample();
    expect(end).toMatchObject({ healthy: 6, live: 6, versions: { '2': 6 } });
    // tasks 2..5 kept their processes through it all; 0 and 1 were replaced twice (bad, then back)
    for (const t of ['roll.web.2', 'roll.web.3', 'roll.web.4', 'roll.web.5']) expect(end.pids[t]).toBe(before.pids[t]);
    for (const t of ['roll.web.0', 'roll.web.1']) expect(end.pids[t]).not.toBe(before.pids[t]);
    // the plan's record has the old spec again: supervision keeps the group on version 2
    const st = await runCli(['status', '--json', '--state', state], { cwd: scratch.dir, env });
    const tasks = JSON.parse(st.stdout).tasks.filter((t: { group: string }) => t.group === 'web');
    expect(tasks.map((t: { state: string }) => t.state)).toEqual(Array(6).fill('running'));
  }, 120_000);
});

describe('canaries and a control host that dies', () => {
  test('canary 1: one new task beside the 6 old, waiting for promotion; deploy promote rolls the rest', async () => {
    const s = sampling();
    const r = await apply('3', `${SURGE}, canary: 1`);
    expect(r.code, r.stderr).toBe(0);
    const [d] = r.doc.deployments;
    expect(d).toMatchObject({ status: 'running', started: true });
    // without --wait through a host, apply returns at once with the id
    expect(await waitFor(async () => (await deployment(d.id)).status === 'waiting-promotion', 30_000, 200)).toBe(true);
    await new Promise((res) => setTimeout(res, 1500));
    expect(sample()).toMatchObject({ live: 7, versions: { '2': 6, '3': 1 } });
    expect((await deployment(d.id)).status).toBe('waiting-promotion');
    const p = await runCli(['deploy', 'promote', d.id, '--state', state], { cwd: scratch.dir, env });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain(`${d.id} roll/web: promoted (running)`);
    expect(await waitFor(async () => (await deployment(d.id)).status === 'succeeded', 60_000, 200)).toBe(true);
    const samples = s.stop();
    console.log(`canary 1 + promote: ${samples.length} samples; healthy min ${Math.min(...samples.map((x) => x.healthy))}, live max ${Math.max(...samples.map((x) => x.live))}`);
    expect(Math.min(...samples.map((x) => x.healthy))).toBeGreaterThanOrEqual(6);
    expect(await waitFor(() => sample().live === 6, 5000, 100)).toBe(true);
    expect(sample()).toMatchObject({ healthy: 6, versions: { '3': 6 } });
  }, 120_000);

  test('kill -9 of the control host mid-deployment: a new host carries it on from where it stood', async () => {
    const s = sampling();
    const r = await apply('4', 'maxParallel: 1, maxSurge: 1, minHealthyTime: 1s, healthyDeadline: 20s');
    expect(r.code, r.stderr).toBe(0);
    const id = r.doc.deployments[0].id;
    const counted = async () => (await deployment(id)).tasks.filter((t) => t.state === 'healthy').length;
    expect(await waitFor(async () => (await counted()) >= 2, 30_000, 100)).toBe(true);
    const atKill = await deployment(id);
    const doneBefore = sample();
    process.kill(host.pid, 'SIGKILL');
    await host.stop();
    // nothing moves while no host runs
    await new Promise((res) => setTimeout(res, 1500));
    const during = sample();
    host = await startControlHost(state, { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env } });
    const ok = await waitFor(async () => (await deployment(id)).status === 'succeeded', 60_000, 200);
    expect(ok, `${JSON.stringify(await deployment(id), null, 1)}\n${host.log()}`).toBe(true);
    const samples = s.stop();
    const end = await deployment(id);
    console.log(`kill -9 at ${atKill.tasks.filter((t) => t.state === 'healthy').length} new healthy, ${atKill.old} old: ${samples.length} samples; healthy min ${Math.min(...samples.map((x) => x.healthy))}, live max ${Math.max(...samples.map((x) => x.live))}`);
    expect(Math.min(...samples.map((x) => x.healthy))).toBeGreaterThanOrEqual(6);
    expect(during.versions['4'] ?? 0).toBeGreaterThanOrEqual(2);
    // the tasks already on version 4 when the host died were kept, not started again
    expect(await waitFor(() => sample().live === 6, 5000, 100)).toBe(true);
    const after = sample();
    const kept = Object.keys(doneBefore.ready).filter((t) => doneBefore.ready[t] === '4' && t !== 'roll.web.6');
    expect(kept.length).toBeGreaterThanOrEqual(1);
    for (const t of kept) expect(after.pids[t]).toBe(doneBefore.pids[t]);
    expect(end.tasks.filter((t) => t.state === 'failed')).toEqual([]);
    expect(sample()).toMatchObject({ healthy: 6, versions: { '4': 6 } });
    expect(host.log()).not.toMatch(/step failed/);
  }, 120_000);
});

describe('without a control host', () => {
  test('plan apply carries its deployment out itself: exit 0 once rolled, 1 when the version fails and is reverted', async () => {
    const alone = path.join(scratch.dir, 'alone');
    const file = path.join(scratch.dir, 'alone.yaml');
    const text = (v: string) =>
      planText(v, 'maxParallel: 1, minHealthyTime: 500ms, healthyDeadline: 20s, autoRevert: true').replace('name: roll', 'name: alone').replace('count: 6', 'count: 2');
    const run = async (v: string) => {
      fs.writeFileSync(file, text(v));
      const r = await runCli(['plan', 'apply', file, '--state', alone, '--json'], { cwd: scratch.dir, env, timeoutMs: 120_000 });
      return { ...r, doc: JSON.parse(r.stdout) };
    };
    try {
      expect((await run('1')).code).toBe(0);
      const t0 = Date.now();
      const good = await run('2');
      expect(good.code, good.stderr).toBe(0);
      expect(good.stderr).toMatch(/no control host serves .*: carrying out deployment dep-[0-9a-f]{10} here/);
      expect(good.doc.deployments).toMatchObject([{ status: 'succeeded', healthy: 2, old: 0 }]);
      console.log(`one-shot apply, 2 tasks one at a time (minHealthyTime 500ms): ${Date.now() - t0} ms`);
      const bad = await run('bad');
      expect(bad.code).toBe(1);
      expect(bad.doc.deployments).toMatchObject([{ status: 'reverted' }]);
      expect(bad.stderr).toMatch(/revert of dep-[0-9a-f]{10}: succeeded/);
    } finally {
      await runCli(['plan', 'destroy', file, '--state', alone], { cwd: scratch.dir, env, timeoutMs: 60_000 });
    }
  }, 180_000);
});
