import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentPool, WarmAgents } from '../../src/control/agents.js';
import { forgetDestroyed } from '../../src/control/plan.js';
import { reconcileRecorded } from '../../src/control/reconcile.js';
import { FileBackend } from '../../src/state/file-backend.js';
import { StateWork } from '../../src/state/work.js';
import { workFrom } from '../helpers/state.js';
import type { StateData } from '../../src/state/types.js';
import { deferEnv, restoreDeferredEnv } from '../../src/executors/deferred-env.js';
import type { AgentSpec } from '../../src/spec/model.js';

describe('NODE_EXTRA_CA_CERTS, deferred', () => {
  it('travels as FACTORY_NODE_EXTRA_CA_CERTS and comes back under its own name', () => {
    const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/etc/ca.pem', PATH: '/bin' };
    const started = deferEnv(env);
    expect(started).toEqual({ FACTORY_NODE_EXTRA_CA_CERTS: '/etc/ca.pem', PATH: '/bin' });
    expect(env.NODE_EXTRA_CA_CERTS).toBe('/etc/ca.pem'); // the original is untouched
    expect(restoreDeferredEnv(started)).toEqual({ NODE_EXTRA_CA_CERTS: '/etc/ca.pem', PATH: '/bin' });
    expect(deferEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin' });
  });

  it('bin/factory starts Node without it and the tasks get it back', async () => {
    const { execFileSync } = await import('node:child_process');
    const bin = path.resolve(__dirname, '../../bin/factory');
    // a stand-in for node on PATH that prints the environment it was started with
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bin-'));
    try {
      fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\necho "ca=${NODE_EXTRA_CA_CERTS-unset} carried=${FACTORY_NODE_EXTRA_CA_CERTS-unset} entry=$1"\n', { mode: 0o755 });
      const out = execFileSync(bin, ['--version'], { env: { PATH: `${dir}:/usr/bin:/bin`, NODE_EXTRA_CA_CERTS: '/etc/ca.pem' }, encoding: 'utf8' });
      expect(out.trim()).toBe(`ca=unset carried=/etc/ca.pem entry=${path.resolve(__dirname, '../../bin/run.cjs')}`);
      const plain = execFileSync(bin, ['--version'], { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: 'utf8' });
      expect(plain.trim()).toMatch(/^ca=unset carried=unset /);
      // as npm installs it: a symlink in node_modules/.bin, run by path or found on PATH
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.symlinkSync(bin, path.join(dir, 'bin', 'factory'));
      const entry = `entry=${path.resolve(__dirname, '../../bin/run.cjs')}`;
      expect(execFileSync(path.join(dir, 'bin', 'factory'), [], { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: 'utf8' })).toContain(entry);
      expect(execFileSync('sh', ['-c', 'factory'], { env: { PATH: `${dir}/bin:${dir}:/usr/bin:/bin` }, encoding: 'utf8' })).toContain(entry);
      // and Node can run the bin file itself (`node bin/factory …`, as npm's shims elsewhere do)
      const root = path.resolve(__dirname, '../..');
      const diff = execFileSync(process.execPath, [bin, 'plan', 'diff', '--offline', '--json', 'examples/quickstart.yaml', '--state', path.join(dir, 'state')], {
        cwd: root, env: { ...process.env, FACTORY_STATE: '', FACTORY_INVENTORY: '' }, encoding: 'utf8',
      });
      expect(JSON.parse(diff).changes).toEqual({ create: 3, destroy: 0, update: 0 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** STATUS is a canned GET /v1/status answer. */
const STATUS = {
  agents: [{ name: 'far', idc: 'dc9', cluster: 'c9', state: 'ready', resources: { cpus: 64, mem: 2 ** 30, disk: 0, gpus: 0 }, drivers: ['process'], attributes: {} }],
  tasks: [{ task: 'p/g/0', agent: 'far', driver: 'process', pid: 4242, state: 'running' }],
  events: [],
  refreshed: true,
};

/** withFakeApiHost serves the typed API's GET /v1/status on <dir>/control.sock and runs bin/factory status against it. */
async function withFakeApiHost(
  prepare: (socket: string, dir: string) => void = () => undefined,
  args: string[] = [],
): Promise<{ code: number | null; out: string; err: string; asked: string[] }> {
  const http = await import('node:http');
  const { spawn } = await import('node:child_process');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-fake-host-'));
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    asked.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/v1/status')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(STATUS));
      } else if (req.url === '/v1/run') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"E_NOT_FOUND","message":"no such endpoint"}}');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  const socket = path.join(dir, 'control.sock');
  await new Promise<void>((r) => server.listen(socket, () => r()));
  prepare(socket, dir);
  try {
    const child = spawn(path.resolve(__dirname, '../../bin/factory'), ['status', '--state', dir, ...args], { env: { PATH: process.env.PATH, XDG_CONFIG_HOME: path.join(dir, 'xdg') } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    return { code, out, err, asked };
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('bin/factory and the control host on the state\'s socket', () => {
  it('status asks the host through the typed API (GET /v1/status), never the old relay, and renders its answer', async () => {
    const r = await withFakeApiHost();
    expect(r.code, r.err).toBe(0);
    expect(r.asked).toEqual(['GET /v1/status?cached=false&events=10']);
    expect(r.out).toMatch(/^far\s+dc9\s+c9\s+ready/m);
    expect(r.out).toMatch(/^p\/g\/0\s+far\s+process\s+4242\s+running/m);
  });

  it('--json prints the host\'s result document', async () => {
    const r = await withFakeApiHost(undefined, ['--json', '--cached']);
    expect(r.code, r.err).toBe(0);
    expect(r.asked).toEqual(['GET /v1/status?cached=true&events=10']);
    expect(JSON.parse(r.out)).toEqual(STATUS);
  });

  it("another user's socket is not trusted: the CLI runs the command itself", async () => {
    const r = await withFakeApiHost((socket) => fs.chownSync(socket, 1, 1));
    expect(r.asked).toEqual([]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(/dc9/);
    expect(r.out).toMatch(/AGENT\s+IDC/);
  });

  it('with FACTORY_CONTROL=off the CLI runs the command itself', async () => {
    const { spawn } = await import('node:child_process');
    const r = await withFakeApiHost();
    expect(r.asked.length).toBe(1);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-off-'));
    try {
      // a socket nobody answers on and the switch off: both run alone
      fs.writeFileSync(path.join(dir, 'control.sock'), '');
      for (const env of [{ FACTORY_CONTROL: 'off' }, {}]) {
        const child = spawn(path.resolve(__dirname, '../../bin/factory'), ['status', '--cached', '--state', dir], { env: { PATH: process.env.PATH, XDG_CONFIG_HOME: path.join(dir, 'xdg'), ...env } });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        const code = await new Promise<number | null>((res) => child.on('close', res));
        expect(code).toBe(0);
        expect(out).toMatch(/No tasks\./);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('WarmAgents', () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-warm-'));
  const local = { name: 'local', idc: 'local', cluster: 'local', transport: { kind: 'local' }, resources: {}, attributes: {} } as unknown as AgentSpec;
  const STATE_ID = 'st-0123456789ab';
  const OTHER_ID = 'st-ba9876543210';
  afterEach(async () => {
    await AgentPool.warm?.close();
    AgentPool.warm = undefined;
  });
  afterAll(() => fs.rmSync(state, { recursive: true, force: true }));

  it('lends one session to successive pools, refreshed; close() of a pool leaves it open', async () => {
    const warm = new WarmAgents();
    AgentPool.warm = warm;
    const p1 = await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID });
    const c1 = p1.connected.get('local')!.client;
    await p1.close();
    expect(c1.closed).toBe(false);
    const p2 = await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID });
    expect(p2.connected.get('local')!.client).toBe(c1);
    expect(warm.size).toBe(1);
    await warm.close();
    expect(c1.closed).toBe(true);
  });

  it('replaces a session that closed, or one opened for another state directory', async () => {
    const warm = new WarmAgents();
    AgentPool.warm = warm;
    const c1 = (await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID })).connected.get('local')!.client;
    await c1.close();
    const c2 = (await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID })).connected.get('local')!.client;
    expect(c2).not.toBe(c1);
    expect(c2.closed).toBe(false);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-warm-'));
    const c3 = (await AgentPool.connect([local], { stateDir: other, stateId: OTHER_ID })).connected.get('local')!.client;
    expect(c3).not.toBe(c2);
    expect(c2.closed).toBe(true);
    expect(c3.registration.workDir).toBe(path.join(other, 'agents', 'local'));
    fs.rmSync(other, { recursive: true, force: true });
  });

  it('a session no command used for maxAgeMs is closed (an agent gone from the inventory)', async () => {
    const warm = new WarmAgents(20);
    AgentPool.warm = warm;
    const other = { ...local, name: 'other' } as AgentSpec;
    const gone = (await AgentPool.connect([other], { stateDir: state, stateId: STATE_ID })).connected.get('other')!.client;
    await new Promise((r) => setTimeout(r, 30));
    const kept = (await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID })).connected.get('local')!.client;
    expect(gone.closed).toBe(true);
    expect(kept.closed).toBe(false);
    expect(warm.size).toBe(1);
  });

  it('each borrowing pool watches the heartbeats while it is in use, and stops watching when closed', async () => {
    const warm = new WarmAgents();
    AgentPool.warm = warm;
    const first = await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID });
    const client = first.connected.get('local')!.client;
    // a watch is one heartbeat listener on the session's client
    const listeners = () => (client as unknown as { heartbeatListeners: Set<unknown> }).heartbeatListeners.size;
    const before = listeners();
    await first.close();
    expect(listeners()).toBe(before - 1);
    for (let i = 0; i < 5; i++) {
      const p = await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID });
      expect(listeners()).toBe(before); // this pool's watch
      await p.close();
    }
    // no watch outlives its pool (they would pile up, one per command, for the session's lifetime)
    expect(listeners()).toBe(before - 1);
  });

  it('pools connecting at once share one new session: none is opened twice and left open (the host would not exit)', async () => {
    const warm = new WarmAgents();
    AgentPool.warm = warm;
    // two starts of job runs in one scheduler pass borrow the agent before it has a session
    const pools = await Promise.all([0, 1, 2].map(() => AgentPool.connect([local], { stateDir: state, stateId: STATE_ID })));
    const clients = pools.map((p) => p.connected.get('local')!.client);
    expect(new Set(clients).size).toBe(1);
    expect(warm.size).toBe(1);
    await warm.close();
    expect(clients.every((c) => c.closed)).toBe(true);
  });

  it('an old session is renewed', async () => {
    const warm = new WarmAgents(0);
    AgentPool.warm = warm;
    const c1 = (await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID })).connected.get('local')!.client;
    await new Promise((r) => setTimeout(r, 5));
    const c2 = (await AgentPool.connect([local], { stateDir: state, stateId: STATE_ID })).connected.get('local')!.client;
    expect(c2).not.toBe(c1);
    expect(c1.closed).toBe(true);
  });
});

describe('destroy and supervision', () => {
  const task = (plan: string) => ({ task: `${plan}/g/0`, plan, group: 'g', project: 'p', agent: 'h1', driver: 'process', specHash: 'x', state: 'running', resources: { cpus: 0, mem: 0, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: 'now' });

  it('a destroy that left tasks (a stop failed) keeps the record for the next destroy but drops the applied spec', async () => {
    const spec = { file: 'a.yaml', name: 'a', project: 'p', groups: [], warnings: [] };
    const data = {
      version: 1, agents: {}, events: [],
      tasks: { 'a/g/0': task('a') },
      plans: { a: { name: 'a', project: 'p', file: '/a.yaml', appliedAt: 'now', spec }, b: { name: 'b', project: 'p', file: '/b.yaml', appliedAt: 'now', spec: { ...spec, name: 'b' } } },
    } as unknown as StateData;
    const work = await workFrom(data);
    forgetDestroyed(work, ['a', 'b']);
    expect(work.plans.get('b')).toBeUndefined();
    expect(work.plans.get('a')).toEqual({ name: 'a', project: 'p', file: '/a.yaml', appliedAt: 'now' });
  });

  it('a supervision pass leaves a plan without an applied spec alone', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-reconcile-'));
    try {
      const store = await FileBackend.open(dir);
      await store.lock();
      const w = new StateWork(store);
      w.plans.put({ name: 'a', project: 'p', file: '/a.yaml', appliedAt: 'now' });
      w.tasks.put(task('a') as StateData['tasks'][string]);
      await w.flush();
      await store.unlock();
      const r = await reconcileRecorded({ stateDir: dir });
      expect(r).toEqual({ passes: [] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
