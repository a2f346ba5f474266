/**
 * Deployments on real containers (issue 14): a group of 4 containers of a private dockerd, under a
 * real control host. Rolled to a new image tag with maxParallel 2 and maxSurge 1, never fewer than 4
 * healthy containers (sampled every 100 ms from the engine itself, through the whole deployment) and
 * all 4 on the new spec at the end. Changed to a version that fails its health check (an env
 * change): with maxSurge 0 the deployment stops at the first batch of 2, the other 2 old containers
 * keep running (the same container ids), and autoRevert brings the batch back.
 *
 * Health is the group's check, run by the engine as the container's Docker HEALTHCHECK (the driver
 * maps `health` to the container's HealthConfig; the factory's own prober runs only for processes):
 * `test -s /tmp/ready`, written once up by a good version, never by the bad one. The sampler asks the
 * engine (one `GET /containers/json` per sample): a running container whose health is `healthy`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { startControlHost, type RunningHost } from '../helpers/control-host.js';
import { buildTestImage, startDockerd, type Dockerd } from '../harness/dockerd.js';

const started = await startDockerd();
const skip = 'skip' in started ? started.skip : undefined;
if (skip) console.warn(`container deployment tests skipped: ${skip}`);
const d = started as Dockerd;

const scratch = scratchDir('factory-docker-deploy-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'roll.yaml');
const env = { FACTORY_DOCKER_HOST: skip ? '' : d.host, FACTORY_DEPLOY_TICK_MS: '200' };
const IMAGE = 'factory-test/roll';
const COUNT = 4;
let host: RunningHost | undefined;

/**
 * planText is the group of 4 on image tag `tag`: a good version writes /tmp/ready once up, a bad one
 * (env BAD set) never does. The shell is PID 1 and ends on SIGTERM, so a stop takes no grace period.
 */
function planText(tag: string, update: string, bad = false): string {
  const up = `trap 'exit 0' TERM; sleep 0.3; [ -n "$BAD" ] || cat /version > /tmp/ready; sleep 600 & wait`;
  return `name: roll
project: e2e
update: {${update}}
containers:
  - name: web
    image: ${IMAGE}:${tag}
    count: ${COUNT}
    command: ["sh", "-c", ${JSON.stringify(up)}]
    env: {BAD: "${bad ? '1' : ''}"}
    resources: {cpus: 0.05, mem: 16Mi}
    stopGrace: 1s
    health: {command: ["test", "-s", "/tmp/ready"], interval: 300ms}
`;
}

const SURGE = 'maxParallel: 2, maxSurge: 1, minHealthyTime: 500ms, healthyDeadline: 20s, progressDeadline: 60s';

/** Sample is what the engine says at one moment about the group's containers. */
interface Sample {
  at: number;
  healthy: number;
  live: number;
  /** tags counts the healthy containers by image tag. */
  tags: Record<string, number>;
  /** ids is each live container's id, by factory task. */
  ids: Record<string, string>;
  /** specs is each live container's spec hash, by factory task. */
  specs: Record<string, string>;
}

/** sample lists the group's containers from the engine: the truth on the host, not what the state says. */
async function sample(): Promise<Sample> {
  const out: Sample = { at: Date.now(), healthy: 0, live: 0, tags: {}, ids: {}, specs: {} };
  const list: Docker.ContainerInfo[] = await d.docker.listContainers({ filters: { label: ['factory.plan=roll'] } });
  for (const c of list) {
    if (c.State !== 'running') continue;
    const task = c.Labels['factory.task']!;
    out.live++;
    out.ids[task] = c.Id;
    out.specs[task] = c.Labels['factory.spec-hash']!;
    if (/\(healthy\)/.test(c.Status)) {
      out.healthy++;
      const tag = c.Image.slice(c.Image.lastIndexOf(':') + 1);
      out.tags[tag] = (out.tags[tag] ?? 0) + 1;
    }
  }
  return out;
}

/** sampling samples every 100 ms (one engine request at a time) until stopped. */
function sampling(): { stop: () => Promise<Sample[]> } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      samples.push(await sample());
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      samples.push(await sample());
      return samples;
    },
  };
}

async function apply(tag: string, update: string, bad = false, extra: string[] = []) {
  fs.writeFileSync(plan, planText(tag, update, bad));
  const r = await runCli(['plan', 'apply', plan, '--state', state, '--json', ...extra], { cwd: scratch.dir, env, timeoutMs: 120_000 });
  return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
}

const tasks = Array.from({ length: COUNT }, (_, i) => `roll/web/${i}`);
const summary = (samples: Sample[]) =>
  `${samples.length} samples over ${samples.at(-1)!.at - samples[0]!.at} ms; healthy min ${Math.min(...samples.map((x) => x.healthy))}, live max ${Math.max(...samples.map((x) => x.live))}`;

beforeAll(async () => {
  if (skip) return;
  await buildTestImage(d.docker, `${IMAGE}:1`, { path: '/version', content: '1\n' });
  await buildTestImage(d.docker, `${IMAGE}:2`, { path: '/version', content: '2\n' });
  fs.mkdirSync(state, { recursive: true });
  host = await startControlHost(state, { cwd: scratch.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env } });
  const first = await apply('1', SURGE);
  expect(first.code, first.stderr).toBe(0);
  expect(first.doc.deployments).toBeUndefined();
  expect(await waitFor(async () => (await sample()).tags['1'] === COUNT, 30_000, 200)).toBe(true);
}, 120_000);

afterAll(async () => {
  if (skip) return;
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir, env, timeoutMs: 60_000 }).catch(() => undefined);
  await host?.stop();
  await d.stop();
  scratch.cleanup();
}, 60_000);

describe.skipIf(skip !== undefined)(`deployments of containers (real dockerd)${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  test('a new image tag, maxParallel 2, maxSurge 1: never fewer than 4 healthy, all 4 on the new spec at the end', async () => {
    const s = sampling();
    const r = await apply('2', SURGE, false, ['--wait']);
    const samples = await s.stop();
    expect(r.code, r.stderr).toBe(0);
    const [dep] = r.doc.deployments;
    expect(dep).toMatchObject({ plan: 'roll', group: 'web', status: 'succeeded', started: true, healthy: COUNT + 1, old: 0 });
    console.log(`containers, good version: ${summary(samples)}`);
    expect(samples.length).toBeGreaterThan(20);
    expect(Math.min(...samples.map((x) => x.healthy))).toBeGreaterThanOrEqual(COUNT);
    expect(Math.max(...samples.map((x) => x.live))).toBeLessThanOrEqual(COUNT + 1);
    // the engine may still be removing the extra container when --wait returns
    expect(await waitFor(async () => (await sample()).live === COUNT, 10_000, 100)).toBe(true);
    const end = await sample();
    expect(end).toMatchObject({ healthy: COUNT, live: COUNT, tags: { '2': COUNT } });
    expect(Object.keys(end.ids).sort()).toEqual(tasks);
    expect(new Set(Object.values(end.specs)).size).toBe(1);
  }, 120_000);

  test('a version that fails its health check, maxSurge 0: stops at the first batch of 2, the other 2 keep their containers, autoRevert brings the batch back', async () => {
    const before = await sample();
    expect(before).toMatchObject({ healthy: COUNT, tags: { '2': COUNT } });
    const s = sampling();
    const r = await apply('2', 'maxParallel: 2, maxSurge: 0, minHealthyTime: 1s, healthyDeadline: 20s, autoRevert: true', true, ['--wait']);
    const samples = await s.stop();
    expect(r.code, r.stderr).toBe(1);
    const [dep] = r.doc.deployments;
    expect(dep.status).toBe('reverted');
    expect(dep.message).toMatch(/^roll\/web\/[01] unhealthy: \d+ failed checks/);
    console.log(`containers, bad version, no surge: ${summary(samples)}`);
    // the batch of 2 stopped first: capacity dipped by 2, never more
    expect(Math.min(...samples.map((x) => x.healthy))).toBe(COUNT - 2);
    expect(Math.max(...samples.map((x) => x.live))).toBeLessThanOrEqual(COUNT);
    // only tasks 0 and 1 ever ran the bad spec
    const badSpecs = new Set(samples.flatMap((x) => Object.entries(x.specs).filter(([, h]) => h !== before.specs['roll/web/0']).map(([t]) => t)));
    expect([...badSpecs].sort()).toEqual(['roll/web/0', 'roll/web/1']);
    expect(await waitFor(async () => (await sample()).healthy === COUNT, 20_000, 200)).toBe(true);
    const end = await sample();
    expect(end).toMatchObject({ healthy: COUNT, live: COUNT, tags: { '2': COUNT } });
    expect(end.specs).toEqual(before.specs);
    // tasks 2 and 3 kept their containers through it all; 0 and 1 were replaced twice (bad, then back)
    for (const t of ['roll/web/2', 'roll/web/3']) expect(end.ids[t]).toBe(before.ids[t]);
    for (const t of ['roll/web/0', 'roll/web/1']) expect(end.ids[t]).not.toBe(before.ids[t]);
  }, 120_000);
});

describe.skipIf(skip !== undefined)(`containers without a health check: healthy is still running${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  const plain = path.join(scratch.dir, 'plain.yaml');
  /** plainText is a group of 2 with no health check; a crashing version exits 0.5 s after its start (the engine restarts it: restart always). */
  const plainText = (tag: string, crash: boolean) => `name: plain
project: e2e
update: {maxParallel: 1, maxSurge: 0, minHealthyTime: 1s, healthyDeadline: 30s, autoRevert: true}
containers:
  - name: api
    image: ${IMAGE}:${tag}
    count: 2
    command: ["sh", "-c", ${JSON.stringify(`trap 'exit 0' TERM; ${crash ? 'sleep 0.5; exit 1' : 'sleep 600 & wait'}`)}]
    resources: {cpus: 0.05, mem: 16Mi}
    stopGrace: 1s
`;
  const applyPlain = async (tag: string, crash: boolean) => {
    fs.writeFileSync(plain, plainText(tag, crash));
    const r = await runCli(['plan', 'apply', plain, '--state', state, '--json', '--wait'], { cwd: scratch.dir, env, timeoutMs: 120_000 });
    return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
  };
  const containers = async () =>
    Object.fromEntries(
      (await d.docker.listContainers({ all: true, filters: { label: ['factory.plan=plain'] } })).map((c) => [c.Labels['factory.task']!, { id: c.Id, state: c.State, image: c.Image }]),
    );

  test('a new image rolls once each container ran for minHealthyTime; a crashing version fails on its first container at its first exit, the other keeps its container, autoRevert brings it back', async () => {
    try {
      expect((await applyPlain('1', false)).code).toBe(0);
      expect(await waitFor(async () => Object.values(await containers()).filter((c) => c.state === 'running').length === 2, 20_000, 200)).toBe(true);
      const good = await applyPlain('2', false);
      expect(good.code, good.stderr).toBe(0);
      expect(good.doc.deployments).toMatchObject([{ status: 'succeeded', healthy: 2, old: 0 }]);
      const before = await containers();
      expect(Object.values(before).map((c) => [c.state, c.image])).toEqual([['running', `${IMAGE}:2`], ['running', `${IMAGE}:2`]]);
      const t0 = Date.now();
      const bad = await applyPlain('1', true);
      const took = Date.now() - t0;
      console.log(`containers without a check, crashing version: failed and reverted in ${took} ms`);
      expect(bad.code, bad.stderr).toBe(1);
      const [dep] = bad.doc.deployments;
      expect(dep.status).toBe('reverted');
      // Docker's restart policy starts it again at once: the step sees the engine's restart count grow
      expect(dep.message).toMatch(/^plain\/api\/0 ended and was restarted in place by its runtime \(restart #\d+\)/);
      // its first exit fails it, long before healthyDeadline (30 s) would
      expect(took).toBeLessThan(20_000);
      expect(await waitFor(async () => Object.values(await containers()).filter((c) => c.state === 'running' && c.image === `${IMAGE}:2`).length === 2, 20_000, 200)).toBe(true);
      const after = await containers();
      expect(after['plain/api/1']!.id).toBe(before['plain/api/1']!.id);
      expect(after['plain/api/0']!.id).not.toBe(before['plain/api/0']!.id);
    } finally {
      await runCli(['plan', 'destroy', plain, '--state', state], { cwd: scratch.dir, env, timeoutMs: 60_000 });
    }
  }, 120_000);
});
