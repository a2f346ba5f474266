/**
 * A container plan through the built CLI against a private dockerd (the local agent's executor finds
 * it through FACTORY_DOCKER_HOST): apply → status shows running and healthy → re-apply changes
 * nothing → logs → image push skips the agent that has it → a plan naming a missing image fails
 * with a clear error → destroy leaves no container.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { TEST_IMAGE, buildTestImage, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { startControlHost } from '../helpers/control-host.js';
import { scopeOf } from '../../src/executors/drivers/docker.js';

const started = await startDockerd();
const skip = 'skip' in started ? started.skip : undefined;
if (skip) console.warn(`container e2e tests skipped: ${skip}`);
const d = started as Dockerd;

const scratch = scratchDir('factory-docker-e2e-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'web.yaml');
const missing = path.join(scratch.dir, 'missing.yaml');
const sick = path.join(scratch.dir, 'sick.yaml');

const run = (args: string[]) => runCli([...args, '--state', state], { cwd: scratch.dir, env: { FACTORY_DOCKER_HOST: d.host } });

interface StatusTask {
  task: string;
  driver: string;
  state: string;
  health?: string;
  pid?: number;
  image?: string;
}

beforeAll(async () => {
  if (skip) return;
  await buildTestImage(d.docker);
  writeFileSync(
    plan,
    `name: web
project: e2e
containers:
  - name: web
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "echo serving $FACTORY_TASK; exec httpd -f -p 8080 -h /www"]
    resources: {cpus: 0.25, mem: 32Mi}
    health: {http: /healthz, port: 8080, interval: 1s}
    stopGrace: 1s
`,
  );
  writeFileSync(
    sick,
    `name: sick
project: e2e
containers:
  - name: api
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "echo ok > /tmp/ok; exec sleep 600"]
    health: {command: ["cat", "/tmp/ok"], interval: 1s}
    restart: always
    stopGrace: 1s
`,
  );
  writeFileSync(
    missing,
    `name: missing
project: e2e
containers:
  - name: ghost
    image: factory-test/absent:1
`,
  );
}, 120_000);

afterAll(async () => {
  if (skip) return;
  await run(['plan', 'destroy', plan]).catch(() => undefined);
  await run(['plan', 'destroy', sick]).catch(() => undefined);
  await d.stop();
  scratch.cleanup();
}, 60_000);

describe.skipIf(skip !== undefined)(`containers through the CLI (real dockerd)${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  test('apply starts the container; status shows it running and healthy; a second apply changes nothing', async () => {
    const r = await run(['plan', 'apply', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.placements).toMatchObject([{ task: 'web/web/0', driver: 'docker', agent: 'local', action: 'create' }]);
    expect(doc.results).toMatchObject([{ task: 'web/web/0', action: 'start', ok: true, state: 'running' }]);

    let task: StatusTask | undefined;
    const healthy = await waitFor(async () => {
      const s = await run(['status', '--json']);
      task = (JSON.parse(s.stdout).tasks as StatusTask[]).find((t) => t.task === 'web/web/0');
      return task?.health === 'healthy';
    }, 20_000, 500);
    expect(healthy, JSON.stringify(task)).toBe(true);
    expect(task).toMatchObject({ driver: 'docker', state: 'running', image: TEST_IMAGE });
    expect(task!.pid).toBeGreaterThan(0);

    const human = await run(['status']);
    expect(human.stdout).toMatch(/web\/web\/0\s+local\s+docker\s+\d+\s+running \(healthy\)/);

    const again = await run(['plan', 'apply', plan, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
    const containers = await d.docker.listContainers({ all: true, filters: { label: ['factory.task=web/web/0'] } });
    expect(containers).toHaveLength(1);
  }, 60_000);

  test('logs shows the container output', async () => {
    const r = await run(['logs', 'web/web/0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('serving web/web/0');
  });

  test('image push skips an agent that has the image', async () => {
    const r = await run(['image', 'push', TEST_IMAGE, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ image: TEST_IMAGE, ok: true, agents: [{ agent: 'local', action: 'skipped' }] });
    expect(doc.id).toMatch(/^sha256:/);
  });

  test('a plan naming an image missing on its agent fails with a clear error', async () => {
    const r = await run(['plan', 'apply', missing]);
    // the task failed to start: exit 3 (1 is kept for errors)
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('image factory-test/absent:1 not present on agent local: run factory image push factory-test/absent:1');
    await run(['plan', 'destroy', missing]);
  });

  test('an unhealthy container shows in status and the next apply restarts it (restart: always)', async () => {
    const first = await run(['plan', 'apply', sick]);
    expect(first.code, first.stderr).toBe(0);
    const statusOf = async () => (JSON.parse((await run(['status', '--json'])).stdout).tasks as StatusTask[]).find((t) => t.task === 'sick/api/0');
    let t: StatusTask | undefined;
    expect(await waitFor(async () => (t = await statusOf())?.health === 'healthy', 20_000, 500), JSON.stringify(t)).toBe(true);
    const [c] = await d.docker.listContainers({ filters: { label: ['factory.task=sick/api/0'] } });
    const ex = await d.docker.getContainer(c!.Id).exec({ Cmd: ['rm', '/tmp/ok'] });
    await ex.start({ hijack: true, stdin: false }).then((st) => new Promise((r) => { st.on('end', r); st.resume(); }));
    expect(await waitFor(async () => (t = await statusOf())?.health === 'unhealthy', 20_000, 500), JSON.stringify(t)).toBe(true);
    expect(t).toMatchObject({ state: 'failed', health: 'unhealthy' });

    const again = await run(['plan', 'apply', sick, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).placements).toMatchObject([{ task: 'sick/api/0', action: 'restart' }]);
    expect(await waitFor(async () => (t = await statusOf())?.health === 'healthy', 20_000, 500), JSON.stringify(t)).toBe(true);
    expect(t?.state).toBe('running');
    expect(await d.docker.listContainers({ all: true, filters: { label: ['factory.task=sick/api/0'] } })).toHaveLength(1);
  }, 90_000);

  test('with a control host supervising, an unhealthy container is restarted with no apply', async () => {
    const hosted = path.join(scratch.dir, 'hosted');
    const env = { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', FACTORY_DOCKER_HOST: d.host };
    const host = await startControlHost(hosted, { cwd: scratch.dir, env, reconcileS: 1 });
    const hostedRun = (args: string[]) => runCli([...args, '--state', hosted], { cwd: scratch.dir, env: { FACTORY_DOCKER_HOST: d.host } });
    try {
      const first = await hostedRun(['plan', 'apply', sick]);
      expect(first.code, first.stderr).toBe(0);
      const statusOf = async () => (JSON.parse((await hostedRun(['status', '--json'])).stdout).tasks as StatusTask[]).find((t) => t.task === 'sick/api/0');
      let t: StatusTask | undefined;
      expect(await waitFor(async () => (t = await statusOf())?.health === 'healthy', 20_000, 500), JSON.stringify(t)).toBe(true);
      const before = t!.pid;
      // this state's container (the earlier test's sick/api/0 runs in another scope)
      const [c] = await d.docker.listContainers({ filters: { label: ['factory.task=sick/api/0', `factory.scope=${scopeOf(path.join(hosted, 'agents', 'local'))}`] } });
      const ex = await d.docker.getContainer(c!.Id).exec({ Cmd: ['rm', '/tmp/ok'] });
      await ex.start({ hijack: true, stdin: false }).then((st) => new Promise((r) => { st.on('end', r); st.resume(); }));
      // no apply from here on: a supervision pass sees it unhealthy and restarts it
      expect(await waitFor(() => /reconcile: sick\/api\/0 on local: started/.test(host.log()), 60_000, 500), host.log()).toBe(true);
      expect(await waitFor(async () => (t = await statusOf())?.health === 'healthy', 30_000, 500), JSON.stringify(t)).toBe(true);
      expect(t).toMatchObject({ state: 'running' });
      expect(t!.pid).not.toBe(before);
    } finally {
      await host.stop();
      await hostedRun(['plan', 'destroy', sick]);
    }
  }, 120_000);

  test('destroy removes the container', async () => {
    const r = await run(['plan', 'destroy', plan]);
    expect(r.code, r.stderr).toBe(0);
    expect(await d.docker.listContainers({ all: true, filters: { label: ['factory.task=web/web/0'] } })).toEqual([]);
  });

  test('plan diff --offline sizes a never-connected local agent in-process, docker included', async () => {
    const fresh = path.join(scratch.dir, 'offline-state');
    const withEngine = await runCli(['plan', 'diff', '--offline', '--json', plan, '--state', fresh], { cwd: scratch.dir, env: { FACTORY_DOCKER_HOST: d.host } });
    expect(withEngine.code, withEngine.stderr).toBe(0);
    const w = JSON.parse(withEngine.stdout);
    expect(w.unplaced).toEqual([]);
    expect(w.placements.map((p: { task: string; agent: string }) => `${p.task}@${p.agent}`)).toEqual(['web/web/0@local']);
    const noEngine = await runCli(['plan', 'diff', '--offline', '--json', plan, '--state', fresh], {
      cwd: scratch.dir,
      env: { FACTORY_DOCKER_HOST: `unix://${path.join(scratch.dir, 'no-such.sock')}` },
    });
    expect(noEngine.code, noEngine.stderr).toBe(0);
    const n = JSON.parse(noEngine.stdout);
    expect(n.placements).toEqual([]);
    expect(n.unplaced[0].reason).toMatch(/driver docker/);
  });
});
