/**
 * `factory state migrate FROM TO` against a real etcd member: a directory → etcd → directory round
 * trip keeps the id, every record, the events (and what the retention dropped) and the revision;
 * a source in use (its lock held, its control host answering) and a destination that is not empty
 * are refused and left as they were.
 */
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StateError } from '../../src/errors.js';
import { copyState } from '../../src/state/copy.js';
import { EtcdBackend } from '../../src/state/etcd-backend.js';
import { FileBackend } from '../../src/state/file-backend.js';
import type { SnapshotDoc } from '../../src/state/tables.js';
import { StateWork } from '../../src/state/work.js';
import type { TaskRecord } from '../../src/state/types.js';
import { runCli } from '../helpers/cli.js';
import { etcdSkipReason, EtcdCluster } from '../harness/etcd.js';

const skip = etcdSkipReason();
// every handle here, the command's too, keeps 40 events and 10 per task: the copy holds what the source keeps
const RETENTION_ENV = { FACTORY_EVENTS_MAX: '40', FACTORY_EVENTS_PER_SUBJECT: '10' };

const task = (id: string, state = 'running'): TaskRecord => ({
  task: id, plan: 'web', group: 'g', project: 'p', agent: 'local', driver: 'process', specHash: 'h', state: state as TaskRecord['state'],
  resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: '2026-01-01T00:00:00.000Z',
});

/** fillState writes agents, plans, tasks, tokens and more events than the retention keeps. */
async function fillState(dir: string): Promise<SnapshotDoc> {
  const b = await FileBackend.open(dir);
  await b.lock();
  const w = new StateWork(b, 'local:test');
  w.agents.put({ name: 'local', idc: 'i', cluster: 'c', state: 'ready', resources: { cpus: 4, mem: 8, disk: 0, gpus: 0, scalars: {} }, attributes: { rack: 'r1' }, drivers: ['process'] });
  w.plans.put({ name: 'web', project: 'p', file: 'web.yaml', appliedAt: '2026-01-01T00:00:00.000Z' });
  w.tokens.put({ id: 'fct_000000000001', hash: 'ab'.repeat(32), scope: 'read', createdAt: '2026-01-01T00:00:00.000Z', createdBy: 'local:test' });
  for (let i = 0; i < 30; i++) w.tasks.put(task(`web/g/${i}`));
  w.event({ kind: 'plan-applied', plan: 'web', message: 'applied web' });
  await w.flush();
  for (let i = 0; i < 60; i++) {
    w.tasks.put(task(`web/g/${i % 30}`, i % 2 ? 'running' : 'exited'));
    w.event({ kind: 'task-exited', task: `web/g/${i % 30}`, message: `exit ${i}` });
    await w.flush();
  }
  w.tasks.delete('web/g/29');
  await w.flush();
  await b.unlock();
  const doc = b.snapshot();
  await b.close();
  return doc;
}

describe.skipIf(skip !== undefined)(`state migrate${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: EtcdCluster;
  let n = 0;
  const dirs: string[] = [];
  const url = () => cluster.url(`migrate/t${++n}`);
  const newDir = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'factory-migrate-'));
    dirs.push(d);
    return d;
  };

  const saved: Record<string, string | undefined> = {};
  beforeAll(async () => {
    for (const [k, v] of Object.entries(RETENTION_ENV)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    cluster = await EtcdCluster.start({ members: 1 });
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await cluster?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('a directory → etcd → a directory keeps the id, every record, the events and the revision', async () => {
    const src = newDir();
    const original = await fillState(src);
    expect(original.droppedThrough).toBeGreaterThan(0);
    const loc = url();
    const there = await copyState(src, loc);
    expect(there).toMatchObject({ id: original.id, rev: original.rev, events: original.events.length, records: { agents: 1, plans: 1, tokens: 1, tasks: 29 } });

    const onEtcd = await EtcdBackend.open(loc);
    try {
      expect(onEtcd.snapshot()).toEqual(original);
      expect(onEtcd.eventsSince(0).reset).toBe(true);
    } finally {
      await onEtcd.close();
    }

    const back = path.join(newDir(), 'restored');
    await copyState(loc, back);
    const restored = await FileBackend.open(back);
    try {
      expect(restored.snapshot()).toEqual(original);
      expect(restored.view().modRev('tasks', 'web/g/0')).toBe(0);
      // the copy is a working state: the next commit continues the revisions
      await restored.lock();
      const rev = await restored.commit({ ops: [], events: [{ topic: 'state', kind: 'state-migrated', message: 'back' }] });
      await restored.unlock();
      expect(rev).toBe(original.rev + 1);
    } finally {
      await restored.close();
    }
  });

  test('a source being written (its lock held) is refused; nothing is created at the destination', async () => {
    const src = newDir();
    await fillState(src);
    const holder = await FileBackend.open(src);
    await holder.lock({ purpose: 'plan apply' });
    const loc = url();
    try {
      const err = (await copyState(src, loc).catch((e: unknown) => e)) as StateError;
      expect(err.code).toBe('E_STATE_LOCKED');
      expect(err.message).toMatch(/locked by another factory process \(pid \d+, plan apply, since .*\): a state is migrated only while nothing writes it$/);
    } finally {
      await holder.close();
    }
    const err = (await EtcdBackend.open(loc, { mustExist: true }).catch((e: unknown) => e)) as StateError;
    expect(err.code).toBe('E_STATE_MISSING');

    // the same from etcd: a writer holding the etcd state's lock
    const loc2 = url();
    await copyState(src, loc2);
    const writer = await EtcdBackend.open(loc2);
    await writer.lock({ purpose: 'plan apply' });
    try {
      await expect(copyState(loc2, path.join(newDir(), 'x'))).rejects.toMatchObject({ code: 'E_STATE_LOCKED' });
    } finally {
      await writer.close();
    }
  });

  test('a destination that already holds a state is refused and left as it was', async () => {
    const src = newDir();
    const doc = await fillState(src);
    const loc = url();
    await copyState(src, loc);
    await expect(copyState(src, loc)).rejects.toMatchObject({ code: 'E_STATE_EXISTS', message: expect.stringMatching(/is not empty/) });
    const other = newDir();
    await fillState(other);
    await expect(copyState(loc, other)).rejects.toMatchObject({ code: 'E_STATE_EXISTS', message: expect.stringMatching(/already holds a state/) });
    const still = await EtcdBackend.open(loc);
    try {
      expect(still.snapshot()).toEqual(doc);
    } finally {
      await still.close();
    }
    await expect(copyState(url(), newDir())).rejects.toMatchObject({ code: 'E_STATE_MISSING' });
  });

  test('the command: --json result; refused while a control host answers on the source’s socket', async () => {
    if (!existsSync(path.resolve('dist/commands/state/migrate.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const src = newDir();
    const doc = await fillState(src);
    const loc = url();
    const ok = await runCli(['state', 'migrate', src, loc, '--json']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ id: doc.id, rev: doc.rev, to: loc, records: { tasks: 29 } });

    // a control host answering on <src>/control.sock
    const socket = path.join(src, 'control.sock');
    const server = http.createServer((_req, res) => res.end(JSON.stringify({ ok: true, pid: 4242 })));
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      const busy = await runCli(['state', 'migrate', src, path.join(newDir(), 'y'), '--json']);
      expect(busy.code).toBe(1);
      expect(JSON.parse(busy.stdout).error).toMatchObject({ code: 'E_CONTROL_RUNNING', message: expect.stringMatching(/a control host serves .* \(pid 4242\)/), hint: 'stop it first: kill 4242' });
    } finally {
      await new Promise((r) => server.close(r));
    }
    const human = await runCli(['state', 'migrate', loc, path.join(newDir(), 'z')]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^Copied state ${doc.id} \\(revision ${doc.rev}: 1 agents, 29 tasks, 1 plans, 1 tokens, \\d+ events\\) from etcd://`));
  }, 60_000);
});
