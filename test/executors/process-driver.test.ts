import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectLimits } from '../../src/executors/discovery.js';
import { isAlive, ProcessDriver, procStat, resolveCommand } from '../../src/executors/drivers/process/index.js';
import { taskDirName } from '../../src/executors/drivers/shared/task-id.js';
import { cgroupV1, makeSpec, Reaper, tempDir, waitFor } from './helpers.js';

const reaper = new Reaper();
let workDir: string;
let driver: ProcessDriver;
const logs: string[] = [];

beforeEach(() => {
  workDir = tempDir();
  driver = new ProcessDriver({ workDir, limits: detectLimits(), log: (m) => logs.push(m) });
});

afterEach(async () => {
  for (const s of await driver.inspect()) await driver.stop(s.task, { graceMs: 0 }).catch(() => undefined);
  reaper.reap();
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function run(spec: ReturnType<typeof makeSpec>) {
  const s = await driver.run(spec);
  reaper.track(s, workDir);
  return s;
}

describe('process driver', () => {
  it('starts a detached task with a marker and cgroup limits', async () => {
    const s = await run(makeSpec('p/g/0', ['sleep', '30']));
    expect(s.state).toBe('running');
    expect(isAlive(s.pid)).toBe(true);
    const dir = path.join(workDir, 'tasks', 'p.g.0');
    const marker = JSON.parse(fs.readFileSync(path.join(dir, 'task.json'), 'utf8'));
    expect(marker.pid).toBe(s.pid);
    expect(marker.pidStart).toBe(procStat(s.pid!)!.start);
    expect(procStat(s.pid!)!.pgrp).toBe(marker.pgid);
    // own session: the shim leads it, not the test runner
    expect(marker.pgid).not.toBe(process.pid);
    expect(fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim()).toBe(String(s.pid));
    if (cgroupV1) {
      expect(s.limits).toBe('cgroup-v1');
      const mem = marker.cgroups.find((c: string) => c.includes('/memory/'));
      const cpu = marker.cgroups.find((c: string) => c.includes('/cpu/'));
      expect(fs.readFileSync(path.join(mem, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 * 1024 * 1024));
      expect(fs.readFileSync(path.join(cpu, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('50000');
      expect(fs.readFileSync(path.join(cpu, 'cpu.cfs_period_us'), 'utf8').trim()).toBe('100000');
      expect(fs.readFileSync(path.join(mem, 'cgroup.procs'), 'utf8')).toContain(String(s.pid));
    }
  });

  it('is idempotent: the same spec adopts the running task (same pid)', async () => {
    const a = await run(makeSpec('p/g/0', ['sleep', '30']));
    const b = await run(makeSpec('p/g/0', ['sleep', '30']));
    expect(b.state).toBe('running');
    expect(b.pid).toBe(a.pid);
    // a fresh driver (a new executor) adopts it too
    const other = new ProcessDriver({ workDir, limits: detectLimits(), log: () => undefined });
    const c = await other.run(makeSpec('p/g/0', ['sleep', '30']));
    expect(c.pid).toBe(a.pid);
    expect((await other.inspect()).map((t) => t.pid)).toEqual([a.pid]);
  });

  it('restarts a task whose specHash changed', async () => {
    const a = await run(makeSpec('p/g/0', ['sleep', '30']));
    const b = await run(makeSpec('p/g/0', ['sleep', '31'], { specHash: 'h2', stopGraceMs: 200 }));
    expect(b.state).toBe('running');
    expect(b.pid).not.toBe(a.pid);
    await waitFor(() => !isAlive(a.pid));
    expect(b.specHash).toBe('h2');
  });

  it('reports a task killed by hand as failed with its signal, and run restarts it', async () => {
    const a = await run(makeSpec('p/g/0', ['sleep', '30']));
    process.kill(a.pid!, 'SIGKILL');
    const s = await waitFor(async () => {
      const st = await driver.status('p/g/0');
      return st && st.state !== 'running' ? st : undefined;
    });
    expect(s!.state).toBe('failed');
    expect(s!.signal).toBe('SIGKILL');
    const b = await run(makeSpec('p/g/0', ['sleep', '30']));
    expect(b.state).toBe('running');
    expect(b.pid).not.toBe(a.pid);
    expect(fs.existsSync(path.join(workDir, 'tasks', 'p.g.0', 'exit'))).toBe(false);
  });

  it('reports exit 0 as finished and exit 3 as failed with exitCode 3', async () => {
    await run(makeSpec('p/ok/0', ['true']));
    await run(makeSpec('p/bad/0', ['sh', '-c', 'exit 3']));
    const ok = await waitFor(async () => ((await driver.status('p/ok/0'))?.state === 'finished' ? driver.status('p/ok/0') : undefined));
    expect(ok?.exitCode).toBe(0);
    const bad = await waitFor(async () => ((await driver.status('p/bad/0'))?.state === 'failed' ? driver.status('p/bad/0') : undefined));
    expect(bad?.exitCode).toBe(3);
    expect(bad?.finishedAt).toBeDefined();
  });

  it('a run-once task (a job run) is never started twice: a second run reports it as it is, running or ended', async () => {
    const a = await run(makeSpec('p/j/r1-1', ['sh', '-c', 'sleep 0.3; exit 4'], { once: true }));
    expect(a.state).toBe('running');
    const again = await run(makeSpec('p/j/r1-1', ['sh', '-c', 'sleep 0.3; exit 4'], { once: true }));
    expect(again.pid).toBe(a.pid);
    const ended = await waitFor(async () => ((await driver.status('p/j/r1-1'))?.state === 'failed' ? driver.status('p/j/r1-1') : undefined));
    expect(ended?.exitCode).toBe(4);
    const after = await run(makeSpec('p/j/r1-1', ['sh', '-c', 'sleep 0.3; exit 4'], { once: true }));
    expect(after).toMatchObject({ state: 'failed', exitCode: 4, pid: a.pid });
    // without once, the same call would start it again: the rule is once's, not an accident
    const restarted = await run(makeSpec('p/j/r1-1', ['sh', '-c', 'sleep 0.3; exit 4']));
    expect(restarted.state).toBe('running');
    expect(restarted.pid).not.toBe(a.pid);
  });

  it('a run-once start past its notAfter is refused (E_TOO_LATE) and starts nothing; one for a task that started is reported as it is', async () => {
    const late = await run(makeSpec('p/j/r2-1', ['sleep', '5'], { once: true, notAfter: Date.now() - 50 })).catch((e: unknown) => e);
    expect(late).toMatchObject({ code: 'E_TOO_LATE' });
    expect((late as Error).message).toMatch(/^run p\/j\/r2-1: not started: it reached the executor \d+ ms after its deadline/);
    expect(await driver.status('p/j/r2-1')).toBeUndefined();
    const a = await run(makeSpec('p/j/r3-1', ['sleep', '5'], { once: true, notAfter: Date.now() + 5000 }));
    expect(a.state).toBe('running');
    const again = await run(makeSpec('p/j/r3-1', ['sleep', '5'], { once: true, notAfter: Date.now() - 50 }));
    expect(again).toMatchObject({ state: 'running', pid: a.pid });
    await driver.stop('p/j/r3-1', { graceMs: 100 });
  });

  it('does not spawn a missing command and reports the exec error', async () => {
    const s = await run(makeSpec('p/g/0', ['no-such-command-xyz', 'a']));
    expect(s.state).toBe('failed');
    expect(s.error).toBe('exec "no-such-command-xyz": executable file not found in $PATH');
    expect(s.pid).toBeUndefined();
    const again = await driver.inspect();
    expect(again).toHaveLength(1);
    expect(again[0]!.error).toMatch(/executable file not found/);
    expect(resolveCommand('./nope', workDir, '/bin')).toEqual({ error: 'exec "./nope": stat ./nope: no such file or directory' });
    expect(resolveCommand('sh', '/', '/nonexistent:/bin')).toEqual({ path: '/bin/sh' });
  });

  it('passes plan text literally: the shim never interprets it', async () => {
    const marker = path.join(workDir, 'pwned');
    const args = [`$(touch ${marker})`, `; touch ${marker}`, `\`touch ${marker}\``, '"; rm -rf /nonexistent-factory-test; "', '$HOME'];
    const s = await run(makeSpec('p/g/0', ['printf', '%s\\n', ...args]));
    const done = await waitFor(async () => ((await driver.status('p/g/0'))?.state === 'finished' ? true : undefined));
    expect(done).toBe(true);
    expect(s.error).toBeUndefined();
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'stdout.log'), 'utf8')).toBe(`${args.join('\n')}\n`);
  });

  it('stop kills a TERM-trapping task after the grace period and removes folder and cgroups', async () => {
    const s = await run(makeSpec('p/g/0', ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done']));
    await waitFor(() => fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'stdout.log'), 'utf8').includes('ready'));
    const marker = JSON.parse(fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'task.json'), 'utf8'));
    const t0 = Date.now();
    const st = await driver.stop('p/g/0', { graceMs: 700 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(650);
    expect(st.state).toBe('stopped');
    expect(isAlive(s.pid)).toBe(false);
    expect(isAlive(marker.pgid)).toBe(false);
    expect(fs.existsSync(path.join(workDir, 'tasks', 'p.g.0'))).toBe(false);
    for (const cg of marker.cgroups) expect(fs.existsSync(cg)).toBe(false);
    expect(await driver.inspect()).toEqual([]);
  });

  it('stop of a well-behaved task is quick; remove:false keeps it as stopped', async () => {
    const s = await run(makeSpec('p/g/0', ['sleep', '30']));
    const t0 = Date.now();
    // a task that honours SIGTERM is gone long before the 30 s grace would end
    const st = await driver.stop('p/g/0', { graceMs: 30_000, remove: false });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(st.state).toBe('stopped');
    expect(isAlive(s.pid)).toBe(false);
    expect((await driver.status('p/g/0'))?.state).toBe('stopped');
    const again = await run(makeSpec('p/g/0', ['sleep', '30']));
    expect(again.state).toBe('running');
  });

  it('streams logs: tail, both streams, and follow until aborted', async () => {
    await run(makeSpec('p/g/0', ['sh', '-c', 'for i in 1 2 3 4 5; do echo out$i; done; echo err1 >&2; while :; do sleep 0.2; echo tick; done']));
    await waitFor(() => fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'stdout.log'), 'utf8').includes('out5'));
    const got: Array<[string, string]> = [];
    await driver.logs('p/g/0', { stream: 'stdout', follow: false, tail: 2 }, (s, d) => got.push([s, d]), new AbortController().signal);
    const text = got.map(([, d]) => d).join('');
    expect(text.split('\n').filter(Boolean)).toHaveLength(2);
    got.length = 0;
    await driver.logs('p/g/0', { stream: 'stderr', follow: false }, (s, d) => got.push([s, d]), new AbortController().signal);
    expect(got).toEqual([['stderr', 'err1\n']]);

    const ctl = new AbortController();
    const seen: string[] = [];
    const p = driver.logs('p/g/0', { stream: 'both', follow: true, tail: 0 }, (_s, d) => seen.push(d), ctl.signal);
    await waitFor(() => seen.join('').includes('tick'), 5000);
    ctl.abort();
    await p;
    const n = seen.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.length).toBe(n);
  });

  it('refuses unsafe task ids', async () => {
    expect(() => taskDirName('../../etc')).toThrow(/invalid task id/);
    expect(() => taskDirName('a/../b')).toThrow(/invalid task id/);
    expect(taskDirName('web/api/3')).toBe('web.api.3');
    await expect(driver.run(makeSpec('../x', ['true']))).rejects.toThrow(/invalid task id/);
  });

  it('reports an unwritable workDir clearly', async () => {
    const ro = tempDir();
    fs.writeFileSync(path.join(ro, 'tasks'), 'a file where the tasks folder should be');
    const d = new ProcessDriver({ workDir: ro, limits: 'rlimit', log: () => undefined });
    await expect(d.run(makeSpec('p/g/0', ['true']))).rejects.toThrow(/cannot create task folder/);
    fs.rmSync(ro, { recursive: true, force: true });
  });

  it('applies ulimit -v in rlimit mode', async () => {
    const d = new ProcessDriver({ workDir, limits: 'rlimit', log: () => undefined });
    const s = await d.run(makeSpec('p/rl/0', ['sh', '-c', 'ulimit -v'], { resources: { cpus: 1, mem: 512 * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] } }));
    reaper.track(s, workDir);
    expect(s.limits).toBe('rlimit');
    await waitFor(async () => ((await d.status('p/rl/0'))?.state === 'finished' ? true : undefined));
    expect(fs.readFileSync(path.join(workDir, 'tasks', 'p.rl.0', 'stdout.log'), 'utf8').trim()).toBe(String(512 * 1024));
  });
});
