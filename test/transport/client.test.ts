import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/executors/drivers/process/index.js';
import { AgentError } from '../../src/errors.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { executorPath, findPackageRoot, LocalTransport } from '../../src/transport/local.js';
import type { Transport, TransportChannel } from '../../src/transport/transport.js';
import { makeSpec, Reaper, tempDir, waitFor } from '../executors/helpers.js';

const reaper = new Reaper();
let workDir: string;
const clients: ExecutorClient[] = [];
const channels: TransportChannel[] = [];

/** recording wraps LocalTransport to remember each channel (and the executor's pid). */
function transport(): Transport {
  const inner = new LocalTransport('test-agent');
  return {
    agent: inner.agent,
    open: async () => {
      const ch = await inner.open();
      channels.push(ch);
      return ch;
    },
  };
}

async function connect(opts: { heartbeatMs?: number } = {}): Promise<ExecutorClient> {
  const c = await ExecutorClient.connect(transport(), { agent: 'test-agent', workDir, timeoutMs: 10_000, ...opts });
  clients.push(c);
  return c;
}

beforeAll(() => {
  // these tests drive the BUILT executor
  executorPath(findPackageRoot());
});

beforeEach(() => {
  workDir = tempDir();
});

afterEach(async () => {
  const c = await connect().catch(() => undefined);
  if (c) for (const t of await c.inspect()) await c.stop(t.task, { graceMs: 0 }).catch(() => undefined);
  for (const cl of clients.splice(0)) await cl.close().catch(() => undefined);
  for (const ch of channels.splice(0)) {
    if (ch.pid && isAlive(ch.pid)) process.kill(ch.pid, 'SIGKILL');
  }
  reaper.reap();
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('ExecutorClient over LocalTransport', () => {
  it('registers with discovery results', async () => {
    const c = await connect();
    const r = c.registration;
    expect(r.protocol).toBe(1);
    expect(r.drivers).toContain('process');
    expect(r.resources.cpus).toBeGreaterThan(0);
    expect(r.resources.mem).toBeGreaterThan(0);
    expect(r.resources.disk).toBeGreaterThan(0);
    expect(r.attributes.hostname).toBeTruthy();
    expect(r.attributes.virtualization).toMatch(/^(true|false)$/);
    // the executor's clock at hello: on this host, the measured offset is the one-way delay only (≤ 0)
    expect(typeof r.clock).toBe('number');
    expect(c.clockOffsetMs).toBeLessThanOrEqual(0);
    expect(c.clockOffsetMs).toBeGreaterThan(-1000);
    expect(r.attributes.cpu_model).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(r.workDir).toBe(path.resolve(workDir));
    expect(r.tasks).toEqual([]);
  });

  it('tasks survive the client and the executor; a new client adopts them without a second copy', async () => {
    const c1 = await connect();
    const s = await c1.run(makeSpec('p/g/0', ['sleep', '30']));
    reaper.track(s, workDir);
    expect(s.state).toBe('running');
    await c1.close();
    expect(isAlive(s.pid)).toBe(true);

    const c2 = await connect();
    const ch = channels.at(-1)!;
    process.kill(ch.pid!, 'SIGKILL');
    await ch.exited;
    expect(isAlive(s.pid)).toBe(true);
    await expect(c2.inspect()).rejects.toThrow(AgentError);

    const c3 = await connect();
    expect(c3.registration.tasks.map((t) => [t.task, t.state, t.pid])).toEqual([['p/g/0', 'running', s.pid]]);
    const again = await c3.run(makeSpec('p/g/0', ['sleep', '30']));
    expect(again.pid).toBe(s.pid);
    expect((await c3.inspect()).length).toBe(1);
  });

  it('reports a task killed by hand as failed and restarts it on run', async () => {
    const c = await connect();
    const s = await c.run(makeSpec('p/g/0', ['sleep', '30']));
    reaper.track(s, workDir);
    process.kill(s.pid!, 'SIGKILL');
    const dead = await waitFor(async () => (await c.inspect()).find((t) => t.state !== 'running'));
    expect(dead!.state).toBe('failed');
    expect(dead!.signal).toBe('SIGKILL');
    const s2 = await c.run(makeSpec('p/g/0', ['sleep', '30']));
    reaper.track(s2, workDir);
    expect(s2.state).toBe('running');
    expect(s2.pid).not.toBe(s.pid);
  });

  it('sends heartbeats with task statuses', async () => {
    const c = await connect({ heartbeatMs: 100 });
    const s = await c.run(makeSpec('p/g/0', ['sleep', '30']));
    reaper.track(s, workDir);
    const beats: Array<{ seq: number; pids: Array<number | undefined> }> = [];
    const off = c.onHeartbeat((hb) => beats.push({ seq: hb.seq, pids: hb.tasks.map((t) => t.pid) }));
    await waitFor(() => beats.length >= 2, 3000);
    off();
    expect(beats.at(-1)!.pids).toEqual([s.pid]);
    expect(beats[1]!.seq).toBeGreaterThan(beats[0]!.seq);
  });

  it('streams logs and follow stops on abort', async () => {
    const c = await connect();
    const s = await c.run(makeSpec('p/g/0', ['sh', '-c', 'echo hello; echo oops >&2; while :; do sleep 0.2; echo tick; done']));
    reaper.track(s, workDir);
    await waitFor(() => fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'stdout.log'), 'utf8').includes('hello'));
    const out: Array<[string, string]> = [];
    await c.logs('p/g/0', { stream: 'both', tail: 1 }, (st, d) => out.push([st, d]));
    expect(out.some(([st, d]) => st === 'stderr' && d === 'oops\n')).toBe(true);

    const ctl = new AbortController();
    const seen: string[] = [];
    const p = c.logs('p/g/0', { stream: 'stdout', follow: true, tail: 0 }, (_st, d) => seen.push(d), ctl.signal);
    await waitFor(() => seen.join('').includes('tick'), 5000);
    ctl.abort();
    await p;
    const n = seen.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(seen.length).toBe(n);
    // the client is still usable after a cancelled stream
    expect((await c.inspect()).length).toBe(1);
  });

  it('reports exec errors, exit codes and executor errors', async () => {
    const c = await connect();
    const missing = await c.run(makeSpec('p/miss/0', ['definitely-not-a-command']));
    expect(missing.state).toBe('failed');
    expect(missing.error).toBe('exec "definitely-not-a-command": executable file not found in $PATH');
    await c.run(makeSpec('p/three/0', ['sh', '-c', 'exit 3']));
    await c.run(makeSpec('p/zero/0', ['true']));
    const all = await waitFor(async () => {
      const ts = await c.inspect();
      return ts.every((t) => t.state !== 'running' && t.state !== 'pending') ? ts : undefined;
    });
    const by = Object.fromEntries(all!.map((t) => [t.task, t]));
    expect(by['p/three/0']).toMatchObject({ state: 'failed', exitCode: 3 });
    expect(by['p/zero/0']).toMatchObject({ state: 'finished', exitCode: 0 });
    await expect(c.logs('p/nope/0', { stream: 'both' }, () => undefined)).rejects.toThrow(/agent test-agent: task p\/nope\/0 not found/);
    await expect(c.run(makeSpec('p/x/0', ['true'], { driver: 'docker' }))).rejects.toThrow(/driver "docker" is not available/);
    await expect(c.run(makeSpec('../x', ['true']))).rejects.toThrow(/invalid task id/);
  });

  it('stop with grace kills a TERM-trapping task and removes everything', async () => {
    const c = await connect();
    const s = await c.run(makeSpec('p/g/0', ['sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done']));
    reaper.track(s, workDir);
    const marker = JSON.parse(fs.readFileSync(path.join(workDir, 'tasks', 'p.g.0', 'task.json'), 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const st = await c.stop('p/g/0', { graceMs: 500 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(st.state).toBe('stopped');
    expect(isAlive(s.pid)).toBe(false);
    expect(fs.existsSync(path.join(workDir, 'tasks', 'p.g.0'))).toBe(false);
    for (const cg of marker.cgroups) expect(fs.existsSync(cg)).toBe(false);
  });

  it('times out a handshake with an AgentError naming the agent', async () => {
    const silent: Transport = {
      agent: 'mute',
      open: async () => {
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        let end!: (e: { code: number | null; signal: string | null }) => void;
        const exited = new Promise<{ code: number | null; signal: string | null }>((r) => (end = r));
        return {
          stdin: new PassThrough(),
          stdout,
          stderr,
          exited,
          close: async () => {
            stdout.end();
            end({ code: 0, signal: null });
          },
        };
      },
    };
    await expect(ExecutorClient.connect(silent, { workDir, timeoutMs: 200 })).rejects.toThrow(/agent mute: hello: no answer from the executor within 200ms/);
  });

  it('an executor that dies rejects pending calls with its stderr', async () => {
    const script = path.join(workDir, 'dying.mjs');
    fs.writeFileSync(script, 'process.stderr.write("boom: disk on fire\\n"); process.exit(4);\n');
    const t = new LocalTransport('dying', { executor: script });
    const err = await ExecutorClient.connect(t, { workDir, timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).message).toMatch(/agent dying: executor (exited|closed)/);
    expect((err as AgentError).message).toMatch(/boom: disk on fire/);
  });
});
