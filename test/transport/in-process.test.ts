import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transportFor } from '../../src/control/agents.js';
import { isAlive } from '../../src/executors/drivers/process/index.js';
import type { AgentSpec } from '../../src/spec/model.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { executorBundlePath, InProcessTransport } from '../../src/transport/in-process.js';
import { findPackageRoot, LocalTransport } from '../../src/transport/local.js';
import { makeSpec, Reaper, tempDir, waitFor } from '../executors/helpers.js';

const reaper = new Reaper();
let workDir: string;

beforeEach(() => {
  executorBundlePath(findPackageRoot()); // these tests drive the BUILT executor bundle
  workDir = tempDir();
});

afterEach(async () => {
  reaper.reap();
  fs.rmSync(workDir, { recursive: true, force: true });
});

const connect = () => ExecutorClient.connect(new InProcessTransport('inproc'), { agent: 'inproc', workDir, timeoutMs: 10_000, heartbeatMs: 100 });

describe('InProcessTransport', () => {
  it('runs the executor in this process: same protocol, tasks outlive the session and are adopted', async () => {
    const c1 = await connect();
    expect(c1.registration.drivers).toContain('process');
    const s = await c1.run(makeSpec('p/g/0', ['sleep', '30']));
    reaper.track(s, workDir);
    expect(s.state).toBe('running');
    expect(s.pid).not.toBe(process.pid);
    let beats = 0;
    const off = c1.onHeartbeat(() => beats++);
    await waitFor(() => beats >= 2, 5000);
    off();
    await c1.close();
    expect(isAlive(s.pid!)).toBe(true);

    const c2 = await connect();
    expect(c2.registration.tasks.map((t) => [t.task, t.pid])).toEqual([['p/g/0', s.pid]]);
    const stopped = await c2.stop('p/g/0', { graceMs: 0 });
    expect(stopped.state).not.toBe('running');
    await waitFor(() => !isAlive(s.pid!), 5000);
    await c2.close();
  });

  it('an executor error comes back as a failed call naming the agent, and the session stays usable', async () => {
    const c = await connect();
    await expect(c.run(makeSpec('p/g/1', ['true'], { driver: 'nope' as 'process' }))).rejects.toThrow(/agent inproc: .*driver "nope" is not available/);
    expect((await c.inspect()).length).toBe(0);
    await c.close();
  });

  it('a missing bundle is an agent error with the build hint, not a crash', async () => {
    const t = new InProcessTransport('nobundle', { bundle: '/nonexistent/executor.bundle.mjs' });
    await expect(ExecutorClient.connect(t, { agent: 'nobundle', workDir, timeoutMs: 2000 })).rejects.toThrow(/agent nobundle: cannot load the executor/);
  });

  it('local agents run in process unless FACTORY_LOCAL_EXECUTOR=child', () => {
    const spec = { name: 'local', transport: { kind: 'local' } } as unknown as AgentSpec;
    expect(transportFor(spec, {}, {})).toBeInstanceOf(InProcessTransport);
    expect(transportFor(spec, {}, { FACTORY_LOCAL_EXECUTOR: 'child' })).toBeInstanceOf(LocalTransport);
  });
});
