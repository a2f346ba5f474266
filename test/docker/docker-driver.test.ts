/**
 * The docker driver against a real, private dockerd (test/harness/dockerd.ts): limits in the
 * container's cgroup, env/command/labels, logs, adoption by a new executor, replacement on a spec
 * change, restart of a dead container, health checks (healthy, unhealthy → restarted per policy)
 * and the missing-image error. Skipped with a reason on a dev machine without dockerd; fails in CI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type Docker from 'dockerode';
import { DockerDriver, LABELS, containerName } from '../../src/executors/drivers/docker.js';
import type { TaskRunSpec, TaskStatus } from '../../src/protocol/messages.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { LocalTransport } from '../../src/transport/local.js';
import { TEST_IMAGE } from '../harness/dockerd.js';
import { dockerTaskSpec, dockerTestEngine } from '../helpers/docker-engine.js';

const engine = await dockerTestEngine('docker driver');
const skip = engine.skip;

const MiB = 1024 * 1024;
let workDir: string;
let driver: DockerDriver;
let docker: Docker;

/** spec builds a docker TaskRunSpec for tests: 0.5 CPU, 64 MiB, restart always. */
function spec(task: string, command: string[], over: Partial<TaskRunSpec> = {}): TaskRunSpec {
  return dockerTaskSpec(task, command, { restart: 'always', ...over });
}

async function waitStatus(task: string, ok: (s: TaskStatus | undefined) => boolean, timeoutMs = 15_000): Promise<TaskStatus | undefined> {
  const end = Date.now() + timeoutMs;
  let s: TaskStatus | undefined;
  for (;;) {
    s = await driver.status(task);
    if (ok(s) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** cgroupFile reads a limit file of a process's cgroup (v1 controller folder, or the v2 unified one). */
function cgroupFile(pid: number, controller: string, v1: string, v2: string): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1line = lines.map((l) => l.split(':')).find((f) => (f[1] ?? '').split(',').includes(controller));
  if (v1line) return fs.readFileSync(path.join('/sys/fs/cgroup', controller, v1line[2] ?? '/', v1), 'utf8').trim();
  const unified = lines.map((l) => l.split(':')).find((f) => f[0] === '0');
  return fs.readFileSync(path.join('/sys/fs/cgroup', unified?.[2] ?? '/', v2), 'utf8').trim();
}

beforeAll(async () => {
  if (skip) return;
  ({ docker, workDir } = await engine.prepare('factory-docker-'));
  driver = new DockerDriver({ workDir, limits: 'cgroup-v1', log: () => undefined, agent: 'test-agent' }, docker);
}, 120_000);

afterAll(() => engine.stop(), 60_000);

describe.skipIf(skip !== undefined)(`docker driver (real dockerd)${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  test('cpu, memory and pids limits are in the container cgroup; env, command, labels, no network', async () => {
    const s = await driver.run(
      spec('lim/web/0', ['sh', '-c', 'echo "greeting=$GREETING"; exec sleep 600'], {
        env: { GREETING: 'hello world; $(rm -rf /)' },
        resources: { cpus: 0.5, mem: 64 * MiB, disk: 0, gpus: 0, scalars: { pids: 77 }, ports: [] },
      }),
    );
    expect(s, JSON.stringify(s)).toMatchObject({ task: 'lim/web/0', driver: 'docker', state: 'running', specHash: 'h1', image: TEST_IMAGE });
    expect(s.pid).toBeGreaterThan(0);
    expect(cgroupFile(s.pid!, 'cpu', 'cpu.cfs_quota_us', 'cpu.max')).toMatch(/^50000( 100000)?$/);
    expect(cgroupFile(s.pid!, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBe(String(64 * MiB));
    expect(cgroupFile(s.pid!, 'pids', 'pids.max', 'pids.max')).toBe('77');

    const info = await docker.getContainer(containerName('lim/web/0', driver.scope)).inspect();
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.NanoCpus).toBe(5e8);
    expect(info.Config.Labels).toMatchObject({ [LABELS.task]: 'lim/web/0', [LABELS.plan]: 'lim', [LABELS.group]: 'web', [LABELS.project]: 'test', [LABELS.specHash]: 'h1' });
    expect(info.Config.Env).toContain('GREETING=hello world; $(rm -rf /)');

    // running is the container's state, not its first line written: under load the echo came after
    // the first read (an empty log in a CI run), so read again until a whole line is there (bounded)
    let out = '';
    for (const until = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 100))) {
      out = '';
      await driver.logs('lim/web/0', { stream: 'stdout', follow: false }, (_s, t) => (out += t), new AbortController().signal);
      if (out.endsWith('\n') || Date.now() > until) break;
    }
    expect(out).toBe('greeting=hello world; $(rm -rf /)\n');
  });

  test('logs: stdout and stderr apart, tail, follow until aborted', async () => {
    await driver.run(spec('logs/g/0', ['sh', '-c', 'echo one; echo two; echo err >&2; sleep 1; echo three; exec sleep 600']));
    await waitStatus('logs/g/0', (s) => s?.state === 'running');
    const got = { stdout: '', stderr: '' };
    const ac = new AbortController();
    const follow = driver.logs('logs/g/0', { stream: 'both', follow: true }, (st, t) => {
      got[st] += t;
      if (got.stdout.includes('three')) ac.abort();
    }, ac.signal);
    const timer = setTimeout(() => ac.abort(), 10_000);
    await follow;
    clearTimeout(timer);
    expect(got.stdout).toBe('one\ntwo\nthree\n');
    expect(got.stderr).toBe('err\n');
    let tail = '';
    await driver.logs('logs/g/0', { stream: 'stdout', follow: false, tail: 1 }, (_s, t) => (tail += t), new AbortController().signal);
    expect(tail).toBe('three\n');
    await expect(driver.logs('logs/none/0', { stream: 'both', follow: false }, () => undefined, new AbortController().signal)).rejects.toThrow(/not found/);
  });

  test('a new executor adopts the running container: no second container, same id', async () => {
    const env = { FACTORY_DOCKER_HOST: engine.engine.host };
    const first = await ExecutorClient.connect(new LocalTransport('a1', { env }), { workDir, agent: 'a1' });
    expect(first.registration.drivers).toContain('docker');
    const s1 = await first.run(spec('adopt/g/0', ['sleep', '600']));
    expect(s1.state).toBe('running');
    await first.close();

    const second = await ExecutorClient.connect(new LocalTransport('a1', { env }), { workDir, agent: 'a1' });
    try {
      const found = second.registration.tasks.find((t) => t.task === 'adopt/g/0');
      expect(found).toMatchObject({ driver: 'docker', state: 'running', containerId: s1.containerId, pid: s1.pid });
      const s2 = await second.run(spec('adopt/g/0', ['sleep', '600']));
      expect(s2.containerId).toBe(s1.containerId);
      expect(s2.pid).toBe(s1.pid);
      const all = await docker.listContainers({ all: true, filters: { label: [`${LABELS.task}=adopt/g/0`] } });
      expect(all).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  test('another spec hash replaces the container; a dead one is started again; stop removes it', async () => {
    const a = await driver.run(spec('repl/g/0', ['sleep', '600'], { restart: 'never' }));
    const b = await driver.run(spec('repl/g/0', ['sleep', '601'], { restart: 'never', specHash: 'h2' }));
    expect(b.state).toBe('running');
    expect(b.containerId).not.toBe(a.containerId);
    expect(await docker.listContainers({ all: true, filters: { label: [`${LABELS.task}=repl/g/0`] } })).toHaveLength(1);

    await docker.getContainer(b.containerId!).kill();
    const dead = await waitStatus('repl/g/0', (s) => s?.state === 'failed');
    expect(dead).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
    const again = await driver.run(spec('repl/g/0', ['sleep', '601'], { restart: 'never', specHash: 'h2' }));
    expect(again).toMatchObject({ state: 'running', containerId: b.containerId });

    const stopped = await driver.stop('repl/g/0', { graceMs: 0 });
    expect(stopped.state).toBe('stopped');
    expect(await driver.status('repl/g/0')).toBeUndefined();
    expect(await driver.stop('repl/g/0')).toMatchObject({ state: 'stopped' });
  });

  test('a run-once container (a job run) that ended is reported as it is, never started again', async () => {
    const a = await driver.run(spec('once/j/r1-1', ['sh', '-c', 'exit 5'], { restart: 'never', once: true }));
    const ended = await waitStatus('once/j/r1-1', (s) => s?.state === 'failed');
    expect(ended).toMatchObject({ state: 'failed', exitCode: 5 });
    const startedBefore = (await docker.getContainer(a.containerId!).inspect()).State.StartedAt;
    // re-sent past its deadline: it exists, so it is reported, not refused
    const again = await driver.run(spec('once/j/r1-1', ['sh', '-c', 'exit 5'], { restart: 'never', once: true, notAfter: Date.now() - 50 }));
    expect(again).toMatchObject({ state: 'failed', exitCode: 5, containerId: a.containerId });
    const info = await docker.getContainer(a.containerId!).inspect();
    expect(info.RestartCount).toBe(0);
    expect(info.State.StartedAt).toBe(startedBefore);
    await driver.stop('once/j/r1-1', { graceMs: 0, remove: true });
  });

  test('a run-once start past its notAfter is refused (E_TOO_LATE): no container is created', async () => {
    const late = await driver.run(spec('once/j/r2-1', ['sh', '-c', 'exit 0'], { restart: 'never', once: true, notAfter: Date.now() - 50 })).catch((e: unknown) => e);
    expect(late).toMatchObject({ code: 'E_TOO_LATE' });
    expect(await driver.status('once/j/r2-1')).toBeUndefined();
  });

  test('a command that does not exist fails with the engine message', async () => {
    const s = await driver.run(spec('bad/g/0', ['no-such-binary']));
    expect(s.state).toBe('failed');
    expect(s.error).toMatch(/no-such-binary/);
  });

  test('http health check: healthy; command check going unhealthy is restarted (always) or kept (never)', async () => {
    const http = await driver.run(
      spec('health/web/0', ['httpd', '-f', '-p', '8080', '-h', '/www'], { health: { http: '/healthz', port: 8080, intervalMs: 500 } }),
    );
    expect(http.state).toBe('running');
    expect((await waitStatus('health/web/0', (s) => s?.health === 'healthy'))?.health).toBe('healthy');

    const tcp = await driver.run(spec('health/tcp/0', ['nc', '-ll', '-p', '9000', '-e', 'true'], { health: { tcp: true, port: 9000, intervalMs: 500 } }));
    expect(tcp.state).toBe('running');
    expect((await waitStatus('health/tcp/0', (s) => s?.health === 'healthy'))?.health).toBe('healthy');

    const check = { command: ['cat', '/tmp/ok'], intervalMs: 500 };
    const cmd = ['sh', '-c', 'echo ok > /tmp/ok; exec sleep 600'];
    for (const restart of ['always', 'never'] as const) {
      const task = `health/${restart}/0`;
      const s = await driver.run(spec(task, cmd, { health: check, restart }));
      expect((await waitStatus(task, (x) => x?.health === 'healthy'))?.health).toBe('healthy');
      // break it from inside: remove the file the check reads
      const ex = await docker.getContainer(s.containerId!).exec({ Cmd: ['sh', '-c', 'rm /tmp/ok'] });
      await ex.start({ hijack: true, stdin: false }).then((st) => new Promise((r) => { st.on('end', r); st.resume(); }));
      const sick = await waitStatus(task, (x) => x?.health === 'unhealthy');
      expect(sick?.health).toBe('unhealthy');
      if (restart === 'never') {
        expect(sick?.state).toBe('running');
        const kept = await driver.run(spec(task, cmd, { health: check, restart }));
        expect(kept).toMatchObject({ state: 'running', health: 'unhealthy', pid: s.pid });
      } else {
        expect(sick?.state).toBe('failed');
        expect(sick?.error).toMatch(/unhealthy/);
        const restarted = await driver.run(spec(task, cmd, { health: check, restart }));
        expect(restarted.containerId).toBe(s.containerId);
        expect(restarted.pid).not.toBe(s.pid);
        expect((await waitStatus(task, (x) => x?.health === 'healthy'))).toMatchObject({ state: 'running', health: 'healthy' });
      }
    }
  }, 60_000);

  test('an image missing on the agent is a failed task with a clear error', async () => {
    const s = await driver.run(spec('noimg/g/0', ['true'], { image: 'factory-test/absent:9' }));
    expect(s).toMatchObject({ state: 'failed', driver: 'docker' });
    expect(s.error).toBe('image factory-test/absent:9 not present on agent test-agent: run factory image push factory-test/absent:9');
  });

  test('inspect lists the containers of this workDir only', async () => {
    const other = new DockerDriver({ workDir: `${workDir}-other`, limits: 'cgroup-v1', log: () => undefined }, docker);
    await other.run(spec('other/g/0', ['sleep', '600']));
    const mine = (await driver.inspect()).map((t) => t.task);
    expect(mine).toContain('lim/web/0');
    expect(mine).not.toContain('other/g/0');
    expect((await other.inspect()).map((t) => t.task)).toEqual(['other/g/0']);
  });
});
