/**
 * The docker driver's pure parts, without an engine: endpoint parsing, the create body (limits,
 * network, labels, restart policy), health check mapping, engine state → TaskStatus, log demuxing.
 */
import { describe, expect, test } from 'vitest';
import type Docker from 'dockerode';
import { LABELS, createOptionsOf, dockerRestartPolicy, pidsLimitOf, statusOfContainer } from '../../src/executors/drivers/docker.js';
import { dockerEndpoint } from '../../src/executors/drivers/docker-engine.js';
import { HTTP_PROBE_SCRIPT, TCP_PROBE_SCRIPT, dockerHealthcheck } from '../../src/executors/drivers/docker-health.js';
import { DockerLogDemuxer } from '../../src/executors/drivers/docker-logs.js';
import type { TaskRunSpec } from '../../src/protocol/messages.js';

const spec: TaskRunSpec = {
  task: 'p/web/3', driver: 'docker', specHash: 'abc', command: ['sh', '-c', 'echo $X'], env: { X: '1; rm -rf /' }, image: 'nginx:1.25',
  resources: { cpus: 0.5, mem: 256 * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] },
  labels: { plan: 'p', group: 'web', project: 'acme' }, stopGraceMs: 2500, restart: 'on-failure',
};

describe('docker endpoint', () => {
  test('FACTORY_DOCKER_HOST wins over DOCKER_HOST; unix, bare path and tcp forms', () => {
    expect(dockerEndpoint({})).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerEndpoint({ DOCKER_HOST: 'unix:///a.sock', FACTORY_DOCKER_HOST: 'unix:///b.sock' })).toEqual({ socketPath: '/b.sock' });
    expect(dockerEndpoint({ DOCKER_HOST: '/c.sock' })).toEqual({ socketPath: '/c.sock' });
    expect(dockerEndpoint({ DOCKER_HOST: 'tcp://10.0.0.1:2375' })).toEqual({ host: '10.0.0.1', port: 2375 });
    expect(() => dockerEndpoint({ DOCKER_HOST: 'ssh://h' })).toThrow(/unsupported docker endpoint/);
  });
});

describe('container create body', () => {
  test('limits, no network, labels, env as data, restart policy, stop timeout', () => {
    const o = createOptionsOf(spec, 'deadbeef', {});
    expect(o.name).toBe('factory-deadbeef-p.web.3');
    expect(o.Cmd).toEqual(['sh', '-c', 'echo $X']);
    expect(o.Env).toContain('X=1; rm -rf /');
    expect(o.Env).toContain('FACTORY_TASK=p/web/3');
    expect(o.StopTimeout).toBe(3);
    expect(o.HostConfig).toMatchObject({ NetworkMode: 'none', NanoCpus: 5e8, Memory: 256 * 1024 * 1024, MemorySwap: 256 * 1024 * 1024, PidsLimit: 4096, RestartPolicy: { Name: 'on-failure' } });
    expect(o.Labels).toMatchObject({ [LABELS.task]: 'p/web/3', [LABELS.plan]: 'p', [LABELS.group]: 'web', [LABELS.project]: 'acme', [LABELS.specHash]: 'abc', [LABELS.scope]: 'deadbeef', [LABELS.restart]: 'on-failure' });
    expect(o.Healthcheck).toBeUndefined();
  });

  test('an empty command keeps the image default; ports mean host networking, or bridge with published ports', () => {
    const withPorts = { ...spec, command: [], resources: { ...spec.resources, ports: [8080] } };
    expect(createOptionsOf(withPorts, 's', {}).Cmd).toBeUndefined();
    expect(createOptionsOf(withPorts, 's', {}).HostConfig?.NetworkMode).toBe('host');
    const bridged = createOptionsOf(withPorts, 's', { FACTORY_DOCKER_PORTS_NETWORK: 'bridge' });
    expect(bridged.HostConfig).toMatchObject({ NetworkMode: 'bridge', PortBindings: { '8080/tcp': [{ HostPort: '8080' }] } });
    expect(bridged.ExposedPorts).toEqual({ '8080/tcp': {} });
  });

  test('restart policies and pids limits', () => {
    expect(dockerRestartPolicy('always')).toEqual({ Name: 'unless-stopped' });
    expect(dockerRestartPolicy('never')).toEqual({ Name: 'no' });
    expect(dockerRestartPolicy(undefined)).toEqual({ Name: 'unless-stopped' });
    expect(pidsLimitOf({ ...spec, resources: { ...spec.resources, scalars: { pids: 50 } } }, {})).toBe(50);
    expect(pidsLimitOf(spec, { FACTORY_DOCKER_PIDS_LIMIT: '200' })).toBe(200);
  });
});

describe('health checks', () => {
  test('command, http and tcp map to CMD argv with constant scripts; plan values stay arguments', () => {
    expect(dockerHealthcheck({ command: ['pg_isready', '-q'], intervalMs: 10_000 })).toEqual({
      Test: ['CMD', 'pg_isready', '-q'], Interval: 10e9, Timeout: 5e9, Retries: 3, StartPeriod: 0,
    });
    expect(dockerHealthcheck({ http: '/health?x=$(id)', port: 80, intervalMs: 2000 }).Test).toEqual([
      'CMD', '/bin/sh', '-c', HTTP_PROBE_SCRIPT, 'factory-health', 'http://127.0.0.1:80/health?x=$(id)', '2',
    ]);
    expect(dockerHealthcheck({ tcp: true, port: 5432, intervalMs: 500 })).toMatchObject({
      Test: ['CMD', '/bin/sh', '-c', TCP_PROBE_SCRIPT, 'factory-health', '5432', '1'], Interval: 5e8, Timeout: 1e9,
    });
  });
});

function info(state: Partial<Docker.ContainerInspectInfo['State']>, labels: Record<string, string> = {}): Docker.ContainerInspectInfo {
  return {
    Id: 'c0ffee0123456789', Name: '/factory-x-p.web.3', RestartCount: 2,
    Config: { Image: 'nginx:1.25', Labels: { [LABELS.task]: 'p/web/3', [LABELS.plan]: 'p', [LABELS.group]: 'web', [LABELS.project]: 'acme', [LABELS.specHash]: 'abc', [LABELS.restart]: 'always', ...labels } },
    State: { Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 42, ExitCode: 0, Error: '', StartedAt: '2026-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z', ...state },
  } as unknown as Docker.ContainerInspectInfo;
}

describe('engine state → TaskStatus', () => {
  test('running, healthy', () => {
    expect(statusOfContainer(info({ Health: { Status: 'healthy', FailingStreak: 0, Log: [] } }))).toMatchObject({
      task: 'p/web/3', driver: 'docker', state: 'running', pid: 42, health: 'healthy', containerId: 'c0ffee012345', specHash: 'abc', labels: { plan: 'p', group: 'web', project: 'acme' },
    });
  });
  test('restarts is the engine\'s RestartCount (a deployment holds a grown count as a death), absent while 0', () => {
    expect(statusOfContainer(info({})).restarts).toBe(2);
    expect('restarts' in statusOfContainer({ ...info({}), RestartCount: 0 })).toBe(false);
  });
  test('unhealthy is failed (restarted by the next apply) unless restart is never', () => {
    const sick = { Health: { Status: 'unhealthy', FailingStreak: 3, Log: [{ Start: '', End: '', ExitCode: 1, Output: 'connection refused\n' }] } };
    expect(statusOfContainer(info(sick))).toMatchObject({ state: 'failed', health: 'unhealthy', error: 'unhealthy: 3 failed checks (exit 1: connection refused)' });
    expect(statusOfContainer(info(sick, { [LABELS.restart]: 'never' }))).toMatchObject({ state: 'running', health: 'unhealthy' });
  });
  test('exited, killed, OOM, restarting, created with an error', () => {
    const exited = { Status: 'exited', Running: false, Pid: 0, FinishedAt: '2026-01-01T00:01:00Z' };
    expect(statusOfContainer(info({ ...exited, ExitCode: 0 }))).toMatchObject({ state: 'finished', exitCode: 0, finishedAt: '2026-01-01T00:01:00Z' });
    expect(statusOfContainer(info({ ...exited, ExitCode: 3 }))).toMatchObject({ state: 'failed', exitCode: 3 });
    expect(statusOfContainer(info({ ...exited, ExitCode: 137 }))).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
    expect(statusOfContainer(info({ ...exited, ExitCode: 137, OOMKilled: true })).error).toMatch(/out of memory/);
    expect(statusOfContainer(info({ Status: 'restarting', Restarting: true, ExitCode: 1 }))).toMatchObject({ state: 'pending', error: 'restarting (restart #2) after exit code 1' });
    expect(statusOfContainer(info({ Status: 'created', Running: false, Pid: 0, Error: 'exec: "nope": executable file not found in $PATH' }))).toMatchObject({ state: 'failed', error: expect.stringMatching(/nope/) });
  });
});

describe('log demuxing', () => {
  test('frames split anywhere, UTF-8 split across frames', () => {
    const frame = (kind: number, text: Buffer) => Buffer.concat([Buffer.from([kind, 0, 0, 0]), Buffer.from([0, 0, 0, text.length].map((b, i) => (i === 3 ? b : 0))), text]);
    const euro = Buffer.from('€', 'utf8');
    const bytes = Buffer.concat([frame(1, Buffer.from('hello ')), frame(2, Buffer.from('oops\n')), frame(1, euro.subarray(0, 1)), frame(1, Buffer.concat([euro.subarray(1), Buffer.from('\n')]))]);
    const got = { stdout: '', stderr: '' };
    const d = new DockerLogDemuxer((s, t) => (got[s] += t));
    for (let i = 0; i < bytes.length; i += 3) d.push(bytes.subarray(i, i + 3));
    d.end();
    expect(got).toEqual({ stdout: 'hello €\n', stderr: 'oops\n' });
  });
});
