/**
 * Two factory states on one agent workDir: each executor session carries its state id (hello), the
 * tasks it starts record it, host names do not collide, and each session lists the other's task as
 * another state's — never found by task id, never stopped. Drives the built executor (LocalTransport).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../../src/errors.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { executorPath, findPackageRoot, LocalTransport } from '../../src/transport/local.js';
import { pidAlive } from '../helpers/cli.js';
import { makeSpec, Reaper, tempDir } from './helpers.js';

const A = 'st-aaaaaaaaaaaa';
const B = 'st-bbbbbbbbbbbb';
const reaper = new Reaper();
let workDir: string;
const clients: ExecutorClient[] = [];

async function connect(stateId?: string): Promise<ExecutorClient> {
  const c = await ExecutorClient.connect(new LocalTransport('agent-1'), { agent: 'agent-1', workDir, timeoutMs: 10_000, ...(stateId ? { stateId } : {}) });
  clients.push(c);
  return c;
}

function trackPgid(dir: string): void {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(workDir, 'tasks', dir, 'task.json'), 'utf8')) as { pgid?: number; pid?: number };
    reaper.track({ task: 'x', driver: 'process', state: 'running', specHash: '', labels: { plan: '', group: '', project: '' }, pid: m.pgid });
    reaper.track({ task: 'x', driver: 'process', state: 'running', specHash: '', labels: { plan: '', group: '', project: '' }, pid: m.pid });
  } catch {
    /* none */
  }
}

beforeAll(() => {
  executorPath(findPackageRoot());
});

beforeEach(() => {
  workDir = tempDir('factory-state-id-');
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const d of fs.existsSync(path.join(workDir, 'tasks')) ? fs.readdirSync(path.join(workDir, 'tasks')) : []) trackPgid(d);
  reaper.reap();
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('state ids on the executor', () => {
  it('refuses a hello with a malformed state id, with a clear error', async () => {
    const err = await connect('st-XYZ').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('E_BAD_REQUEST');
    expect((err as AgentError).message).toMatch(/invalid state id "st-XYZ": expected st- and 12 hex digits/);
  });

  it('two states running the same task id on one workDir: no collision, each sees the other as foreign and never touches it', async () => {
    const a = await connect(A);
    const b = await connect(B);
    const spec = makeSpec('quick/ticker/0', ['sleep', '300']);
    const ra = await a.run(spec);
    const rb = await b.run(spec);
    reaper.track(ra);
    reaper.track(rb);
    expect(ra.state).toBe('running');
    expect(rb.state).toBe('running');
    // not adopted: two processes, two folders named after the states
    expect(rb.pid).not.toBe(ra.pid);
    expect(ra.stateId).toBe(A);
    expect(rb.stateId).toBe(B);
    expect(fs.readdirSync(path.join(workDir, 'tasks')).sort()).toEqual(['quick.ticker.0_aaaaaaaa', 'quick.ticker.0_bbbbbbbb']);
    const marker = JSON.parse(fs.readFileSync(path.join(workDir, 'tasks', 'quick.ticker.0_aaaaaaaa', 'task.json'), 'utf8')) as { state?: string };
    expect(marker.state).toBe(A);

    // both list both, each with the state that started it
    for (const c of [a, b]) {
      const list = await c.inspect();
      expect(list.map((t) => [t.task, t.stateId, t.pid]).sort()).toEqual(
        [
          ['quick/ticker/0', A, ra.pid],
          ['quick/ticker/0', B, rb.pid],
        ].sort(),
      );
    }
    // a new session of A (the register list) reports both too
    const a2 = await connect(A);
    expect(a2.registration.tasks.filter((t) => t.stateId === B)).toHaveLength(1);

    // B stops "its" task: only B's process ends; A's keeps running
    const stopped = await b.stop('quick/ticker/0', { graceMs: 500 });
    expect(stopped.state).toBe('stopped');
    expect(pidAlive(rb.pid!)).toBe(false);
    expect(pidAlive(ra.pid!)).toBe(true);
    // stopping again is idempotent and still leaves A's task alone
    await b.stop('quick/ticker/0', { graceMs: 500 });
    expect(pidAlive(ra.pid!)).toBe(true);
    expect(fs.readdirSync(path.join(workDir, 'tasks'))).toEqual(['quick.ticker.0_aaaaaaaa']);
    // B asking for the logs of A's task: another state's task, named
    await expect(b.logs('quick/ticker/0', {}, () => undefined)).rejects.toMatchObject({ code: 'E_FOREIGN_TASK', message: expect.stringContaining(A) });
    // A's run is idempotent (adopted, same pid)
    expect((await a.run(spec)).pid).toBe(ra.pid);
  });

  it('a legacy task (no state recorded) keeps its old folder name and is found by a state session, but never re-adopted by run', async () => {
    const legacy = await connect();
    const spec = makeSpec('old/web/0', ['sleep', '300']);
    const r0 = await legacy.run(spec);
    reaper.track(r0);
    expect(r0.stateId).toBeUndefined();
    expect(fs.readdirSync(path.join(workDir, 'tasks'))).toEqual(['old.web.0']);
    const a = await connect(A);
    const listed = (await a.inspect()).find((t) => t.task === 'old/web/0');
    expect(listed?.stateId).toBeUndefined();
    expect(listed?.pid).toBe(r0.pid);
    // lookups by id fall back to the legacy task (the control side decides whether it is its own)
    await a.logs('old/web/0', {}, () => undefined);
    await a.stop('old/web/0', { graceMs: 500 });
    expect(pidAlive(r0.pid!)).toBe(false);
    expect(fs.readdirSync(path.join(workDir, 'tasks'))).toEqual([]);
  });
});
