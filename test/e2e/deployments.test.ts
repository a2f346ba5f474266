/**
 * Deployments on real processes with a real control host (issue 14): a group of 6 rolled to a good
 * version with maxParallel 2 and maxSurge 1 never has fewer than 6 healthy tasks (sampled every
 * 100 ms from the agent itself, through the whole deployment) and ends with all 6 on the new spec; a
 * version that fails its health check stops at the first batch, the other old tasks keep running,
 * and autoRevert brings the first batch back.
 *
 * Health is the group's check (`test -s ready`): a task writes its version to `ready` once up (the
 * bad version never does). The sampler reads each task folder of the local agent: a live pid and a
 * `ready` file is a healthy task of that version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { startControlHost, type RunningHost } from '../helpers/control-host.js';

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
  const out: Sample = { at: Date.now(), healthy: 0, live: 0, versions: {}, pids: {} };
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
    }
  }
  return out;
}

/** sampling samples every 100 ms until stopped. */
function sampling(): { stop: () => Sample[] } {
  const samples: Sample[] = [sample()];
  const timer = setInterval(() => samples.push(sample()), 100);
  return { stop: () => (clearInterval(timer), samples.push(sample()), samples) };
}

async function apply(version: string, update: string, extra: string[] = []) {
  fs.writeFileSync(plan, planText(version, update));
  const r = await runCli(['plan', 'apply', plan, '--state', state, '--json', ...extra], { cwd: scratch.dir, env, timeoutMs: 120_000 });
  return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
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
    expect(d.message).toMatch(/^roll\/web\/0 unhealthy: \d+ failed checks; roll\/web\/1 unhealthy: \d+ failed checks$/);
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
