/**
 * A process task's health check, run by its prober beside the task: command, tcp and http checks;
 * starting → healthy → unhealthy after 3 failures in a row (then failed, so a pass restarts it);
 * the prober ends with the task.
 */
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectLimits } from '../../src/executors/discovery.js';
import { isAlive, ProcessDriver } from '../../src/executors/drivers/process/index.js';
import { makeSpec, Reaper, tempDir, waitFor } from './helpers.js';

const reaper = new Reaper();
let workDir: string;
let driver: ProcessDriver;
const servers: (net.Server | http.Server)[] = [];

beforeEach(() => {
  workDir = tempDir();
  driver = new ProcessDriver({ workDir, limits: detectLimits(), log: () => undefined });
});

afterEach(async () => {
  for (const s of await driver.inspect()) await driver.stop(s.task, { graceMs: 0 }).catch(() => undefined);
  for (const s of servers.splice(0)) s.close();
  reaper.reap();
  fs.rmSync(workDir, { recursive: true, force: true });
});

const status = async (task: string) => (await driver.status(task))!;

describe('process health checks', () => {
  it('a command check: starting, healthy while it passes, unhealthy (failed) after 3 failures, and the prober ends with the task', async () => {
    const flag = path.join(workDir, 'ok');
    fs.writeFileSync(flag, '');
    const s = await driver.run(makeSpec('p/g/0', ['sleep', '60'], { health: { command: ['test', '-e', flag], intervalMs: 100 }, restart: 'always' }));
    reaper.track(s, workDir);
    expect(s.state).toBe('running');
    expect(['starting', 'healthy']).toContain(s.health);
    expect(await waitFor(async () => (await status('p/g/0')).health === 'healthy', 5000, 50)).toBe(true);
    fs.rmSync(flag);
    expect(await waitFor(async () => (await status('p/g/0')).health === 'unhealthy', 5000, 50)).toBe(true);
    const bad = await status('p/g/0');
    expect(bad).toMatchObject({ state: 'failed', health: 'unhealthy', error: 'unhealthy: 3 failed checks' });
    const marker = JSON.parse(fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'task.json'), 'utf8'));
    expect(isAlive(marker.proberPgid, marker.proberStart)).toBe(true);
    await driver.stop('p/g/0', { graceMs: 0 });
    expect(await waitFor(() => !isAlive(marker.proberPgid, marker.proberStart), 3000, 50)).toBe(true);
  });

  it('run of an unhealthy task (an in-place restart) ends its command before it starts the new one', async () => {
    const flag = path.join(workDir, 'ok2');
    const spec = makeSpec('p/g/3', ['sleep', '60'], { health: { command: ['test', '-e', flag], intervalMs: 100 }, restart: 'always' });
    const first = await driver.run(spec);
    reaper.track(first, workDir);
    expect(await waitFor(async () => (await status('p/g/3')).state === 'failed', 5000, 50)).toBe(true);
    expect(isAlive(first.pid)).toBe(true);
    fs.writeFileSync(flag, '');
    const again = await driver.run(spec);
    reaper.track(again, workDir);
    expect(again.pid).not.toBe(first.pid);
    expect(await waitFor(() => !isAlive(first.pid), 3000, 50)).toBe(true);
    expect(await waitFor(async () => (await status('p/g/3')).health === 'healthy', 5000, 50)).toBe(true);
  });

  it('a running task whose prober is gone (an executor killed mid-start) gets one again at the next inspect', async () => {
    const s = await driver.run(makeSpec('p/g/4', ['sleep', '60'], { health: { command: ['true'], intervalMs: 100 } }));
    reaper.track(s, workDir);
    const file = path.join(workDir, 'tasks', 'p.g.4', 'task.json');
    const before = JSON.parse(fs.readFileSync(file, 'utf8'));
    process.kill(-before.proberPgid, 'SIGKILL');
    expect(await waitFor(() => !isAlive(before.proberPgid, before.proberStart), 3000, 50)).toBe(true);
    fs.rmSync(path.join(workDir, 'tasks', 'p.g.4', 'health'), { force: true });
    expect((await status('p/g/4')).health).toBe('starting');
    await driver.inspect();
    expect(await waitFor(() => {
      const m = JSON.parse(fs.readFileSync(file, 'utf8'));
      return m.proberPgid !== before.proberPgid && isAlive(m.proberPgid, m.proberStart);
    }, 3000, 50)).toBe(true);
    expect(await waitFor(async () => (await status('p/g/4')).health === 'healthy', 5000, 50)).toBe(true);
  });

  it('restart never: an unhealthy task is reported unhealthy but left running', async () => {
    const s = await driver.run(makeSpec('p/g/1', ['sleep', '60'], { health: { command: ['false'], intervalMs: 100 }, restart: 'never' }));
    reaper.track(s, workDir);
    expect(await waitFor(async () => (await status('p/g/1')).health === 'unhealthy', 5000, 50)).toBe(true);
    expect((await status('p/g/1')).state).toBe('running');
  });

  it('tcp and http checks on 127.0.0.1:port', async () => {
    const tcp = net.createServer((c) => c.end());
    const web = http.createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 500).end());
    servers.push(tcp, web);
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const tcpPort = (tcp.address() as net.AddressInfo).port;
    const webPort = (web.address() as net.AddressInfo).port;
    const specs = [
      makeSpec('p/t/0', ['sleep', '60'], { health: { tcp: true, port: tcpPort, intervalMs: 200 } }),
      makeSpec('p/h/0', ['sleep', '60'], { health: { http: '/healthz', port: webPort, intervalMs: 200 } }),
      makeSpec('p/h/1', ['sleep', '60'], { health: { http: '/broken', port: webPort, intervalMs: 200 }, restart: 'never' }),
    ];
    for (const spec of specs) reaper.track(await driver.run(spec), workDir);
    expect(await waitFor(async () => (await status('p/t/0')).health === 'healthy' && (await status('p/h/0')).health === 'healthy', 10_000, 100)).toBe(true);
    expect(await waitFor(async () => (await status('p/h/1')).health === 'unhealthy', 10_000, 100)).toBe(true);
    tcp.close();
    expect(await waitFor(async () => (await status('p/t/0')).health === 'unhealthy', 10_000, 100)).toBe(true);
  });

  it('a task without a check reports no health', async () => {
    const s = await driver.run(makeSpec('p/g/2', ['sleep', '60']));
    reaper.track(s, workDir);
    expect(s.health).toBeUndefined();
  });
});
