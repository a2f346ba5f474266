/**
 * What only the etcd backend does, against real etcd members on loopback: writers in two processes
 * taking turns, fencing (a revoked lease, a holder frozen past its lease), a 3-member cluster losing
 * one member and then its quorum, commits etcd would refuse, the retention's deletes, and a state
 * of 100k tasks. The figures (commit latency, 100k write and read) are printed on stderr.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StateError } from '../../src/errors.js';
import { EtcdBackend } from '../../src/state/etcd-backend.js';
import { StateWork } from '../../src/state/work.js';
import type { PlanRecord, TaskRecord } from '../../src/state/types.js';
import { etcdSkipReason, EtcdCluster } from '../harness/etcd.js';
import { etcdChild as child } from '../harness/etcd-child.js';

const skip = etcdSkipReason();

const plan = (name: string, file = `${name}.yaml`): PlanRecord => ({ name, project: 'p', file, appliedAt: 'now' });
const task = (id: string, state = 'running'): TaskRecord => ({
  task: id, plan: 'a', group: 'g', project: 'p', agent: 'local', driver: 'process', specHash: 'h', state: state as TaskRecord['state'],
  resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: '2026-01-01T00:00:00.000Z',
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** commitLatency commits n one-task changes with an event each and returns the median in ms. */
async function commitLatency(b: EtcdBackend, n: number): Promise<number> {
  await b.lock();
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await b.commit({ ops: [{ table: 'tasks', key: `lat/g/${i}`, value: task(`lat/g/${i}`) }], events: [{ topic: 'task', kind: 'task-started', task: `lat/g/${i}`, message: 'started' }] });
      times.push(performance.now() - t0);
    }
  } finally {
    await b.unlock();
  }
  return median(times);
}

describe.skipIf(skip !== undefined)(`etcd backend, one member${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: EtcdCluster;
  let n = 0;
  const url = () => cluster.url(`one/t${++n}`);
  const opened: EtcdBackend[] = [];
  const open = async (location: string) => {
    const b = await EtcdBackend.open(location);
    opened.push(b);
    return b;
  };

  beforeAll(async () => {
    cluster = await EtcdCluster.start({ members: 1 });
  });
  afterAll(async () => {
    for (const b of opened) await b.close().catch(() => undefined);
    await cluster?.stop();
  });

  test('the keys: one per record and per event, the id and the revision under meta/', async () => {
    const loc = url();
    const b = await open(loc);
    await b.lock();
    const w = new StateWork(b);
    w.tasks.put(task('a/g/0'));
    w.event({ kind: 'task-started', task: 'a/g/0', message: 'started' });
    await w.flush();
    await b.unlock();
    const raw = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
    try {
      const keys = (await raw.getAll().prefix(`${b.keys.prefix}/`).keys()).sort();
      expect(keys).toEqual([`${b.keys.prefix}/events/000000000001`, `${b.keys.prefix}/meta/id`, `${b.keys.prefix}/meta/rev`, `${b.keys.prefix}/tasks/a/g/0`]);
      expect(await raw.get(`${b.keys.prefix}/meta/id`).string()).toBe(b.id);
      expect(JSON.parse((await raw.get(`${b.keys.prefix}/tasks/a/g/0`).string())!)).toEqual(task('a/g/0'));
      expect(JSON.parse((await raw.get(`${b.keys.prefix}/meta/rev`).string())!)).toMatchObject({ rev: 1 });
    } finally {
      raw.close();
    }
  });

  test(`commit latency on one member (median of 40): one record and one event`, async () => {
    const b = await open(url());
    const ms = await commitLatency(b, 40);
    process.stderr.write(`etcd backend: commit median ${ms.toFixed(2)} ms on 1 member (40 commits, fsync on)\n`);
    expect(ms).toBeLessThan(100);
  });

  test('two processes contend for the lock: every increment lands once and revisions stay contiguous', async () => {
    const loc = url();
    const seed = await open(loc);
    await seed.lock();
    await seed.commit({ ops: [{ table: 'plans', key: 'counter', value: plan('counter', '0') }] });
    await seed.unlock();
    const script = `
      const b = await EtcdBackend.open(${JSON.stringify(loc)});
      for (let i = 0; i < 15; i++) {
        await b.lock({ purpose: 'increment', onWait: () => undefined });
        const now = Number(b.view().get('plans', 'counter').file);
        const p = b.view().get('plans', 'counter');
        await b.commit({ ops: [{ table: 'plans', key: 'counter', value: { ...p, file: String(now + 1) } }], events: [{ topic: 'plan', kind: 'plan-applied', message: 'inc ' + (now + 1) + ' by ' + process.pid }], guards: [{ table: 'plans', key: 'counter', rev: b.view().modRev('plans', 'counter') }] });
        await b.unlock();
      }
      await b.close();
      process.stdout.write('done\\n');
    `;
    const kids = [child(script), child(script)];
    await Promise.all(kids.map((k) => k.waitFor(/^done$/, 60_000)));
    const b = await open(loc);
    expect(b.view().get('plans', 'counter')?.file).toBe('30');
    const events = b.eventsSince(0).events;
    expect(events.map((e) => e.rev)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
    expect(events.map((e) => e.message.split(' ')[1])).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
    // both processes wrote
    expect(new Set(events.map((e) => e.message.split(' by ')[1])).size).toBe(2);
  }, 60_000);

  test('a holder whose lease was revoked cannot commit: E_STATE_FENCED, nothing written, the next writer goes on at once', async () => {
    const loc = url();
    const a = await open(loc);
    const b = await open(loc);
    await a.lock({ purpose: 'plan apply' });
    await a.commit({ ops: [{ table: 'plans', key: 'before', value: plan('before') }], events: [{ topic: 'plan', kind: 'plan-applied', message: 'before' }] });
    const raw = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
    try {
      await raw.leaseClient.leaseRevoke({ ID: a.lockLease! });
    } finally {
      raw.close();
    }
    const ops = Array.from({ length: 50 }, (_, i) => ({ table: 'tasks' as const, key: `a/g/${i}`, value: task(`a/g/${i}`) }));
    const err = (await a.commit({ ops, events: ops.map((o) => ({ topic: 'task' as const, kind: 'task-started', task: o.key, message: 'started' })) }).catch((e: unknown) => e)) as StateError;
    expect(err.code).toBe('E_STATE_FENCED');
    expect(err.message).toMatch(/state lock on etcd .* is no longer held by this process: its lease expired or was revoked.*nothing was written/);
    const t0 = Date.now();
    await b.lock({ timeoutMs: 2_000 });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(b.view().size('tasks')).toBe(0);
    expect(b.view().rev).toBe(1);
    await b.commit({ ops: [{ table: 'plans', key: 'after', value: plan('after') }], events: [{ topic: 'plan', kind: 'plan-applied', message: 'after' }] });
    await b.unlock();
    // the fenced handle lets go quietly and takes turns again with a new lease
    await a.unlock();
    await a.lock({ timeoutMs: 2_000 });
    expect(a.view().list('plans').map((p) => p.name).sort()).toEqual(['after', 'before']);
    await a.commit({ ops: [{ table: 'plans', key: 'again', value: plan('again') }] });
    await a.unlock();
    const fresh = await open(loc);
    expect(fresh.view().size('tasks')).toBe(0);
    expect(fresh.view().rev).toBe(3);
    expect(fresh.eventsSince(0).events.map((e) => e.message)).toEqual(['before', 'after']);
  });

  test('a holder frozen past its lease (SIGSTOP) is fenced: the next holder’s commit stands, the old one’s is refused', async () => {
    const loc = url();
    const k = child(
      `
      const b = await EtcdBackend.open(${JSON.stringify(loc)});
      await b.lock({ purpose: 'frozen' });
      process.stdout.write('locked\\n');
      process.stdin.once('data', async () => {
        try {
          await b.commit({ ops: [{ table: 'plans', key: 'stale', value: { name: 'stale', project: 'p', file: 'x', appliedAt: 'now' } }] });
          process.stdout.write('committed\\n');
        } catch (e) {
          process.stdout.write('refused ' + e.code + '\\n');
        }
        process.exit(0);
      });
    `,
      { FACTORY_ETCD_LOCK_TTL: '1' },
    );
    try {
      await k.waitFor(/^locked$/);
      k.proc.kill('SIGSTOP');
      const b = await open(loc);
      const t0 = Date.now();
      await b.lock({ timeoutMs: 15_000, onWait: () => undefined });
      const waited = Date.now() - t0;
      // etcd's least lease is about 2 s with the default election timeout
      expect(waited).toBeGreaterThan(500);
      expect(waited).toBeLessThan(8_000);
      await b.commit({ ops: [{ table: 'plans', key: 'fresh', value: plan('fresh') }] });
      await b.unlock();
      k.proc.kill('SIGCONT');
      k.proc.stdin!.write('go\n');
      expect(await k.waitFor(/^(refused|committed)/)).toBe('refused E_STATE_FENCED');
      await b.refresh();
      expect(b.view().list('plans').map((p) => p.name)).toEqual(['fresh']);
    } finally {
      k.proc.kill('SIGCONT');
      k.proc.kill('SIGKILL');
    }
  }, 30_000);

  test('a commit etcd would refuse is refused whole, with a clear error: over 1.5 MiB, or more keys than --max-txn-ops', async () => {
    const b = await open(url());
    await b.lock();
    try {
      const big = Array.from({ length: 600 }, (_, i) => ({ table: 'plans' as const, key: `big${i}`, value: { ...plan(`big${i}`), inventoryText: 'x'.repeat(3_000) } }));
      const tooBig = (await b.commit({ ops: big }).catch((e: unknown) => e)) as StateError;
      expect(tooBig.code).toBe('E_STATE_TOO_LARGE');
      expect(tooBig.message).toMatch(/this commit is 1\.\d\d MiB \(600 records, 0 events\): etcd takes at most 1\.50 MiB per request; a commit is atomic and is not split, so nothing was written/);
      const many = Array.from({ length: 4_100 }, (_, i) => ({ table: 'plans' as const, key: `m${i}`, value: plan(`m${i}`) }));
      const tooMany = (await b.commit({ ops: many }).catch((e: unknown) => e)) as StateError;
      expect(tooMany.code).toBe('E_STATE_TOO_LARGE');
      expect(tooMany.message).toMatch(/etcd refused the commit: too many operations/);
      expect(tooMany.hint).toMatch(/--max-txn-ops/);
      expect(b.view().rev).toBe(0);
      expect(b.view().size('plans')).toBe(0);
      await b.commit({ ops: [{ table: 'plans', key: 'ok', value: plan('ok') }] });
      expect(b.view().rev).toBe(1);
    } finally {
      await b.unlock();
    }
  });

  test('events the retention dropped are deleted from etcd in batches; what is kept survives a reopen', async () => {
    const loc = url();
    const retention = { maxEvents: 200, maxAgeMs: 3600_000, perSubject: 50 };
    const b = await EtcdBackend.open(loc, { retention });
    opened.push(b);
    await b.lock();
    for (let round = 0; round < 20; round++) {
      const events = Array.from({ length: 100 }, (_, i) => ({ topic: 'task' as const, kind: 'task-started', task: `a/g/${(round * 100 + i) % 7}`, message: String(round * 100 + i) }));
      events.push({ topic: 'agent' as const, kind: 'agent-back', agent: `a${round}`, message: `agent ${round}` } as never);
      await b.commit({ ops: [], events });
    }
    await b.unlock();
    expect(b.stats().compactions).toBeGreaterThan(0);
    const kept = b.eventsSince(0).events;
    expect(kept.length).toBeLessThanOrEqual(200);
    const raw = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
    try {
      const stored = await raw.getAll().prefix(`${b.keys.prefix}/events/`).keys();
      // never more than the kept ones plus one slack of the bound (64 here)
      expect(stored.length).toBeGreaterThanOrEqual(kept.length);
      expect(stored.length).toBeLessThanOrEqual(kept.length + 64);
    } finally {
      raw.close();
    }
    const again = await EtcdBackend.open(loc, { retention });
    opened.push(again);
    expect(again.eventsSince(0).events).toEqual(kept);
    expect(again.eventsSince(0).reset).toBe(true);
    expect(again.view().rev).toBe(2020);
  });

  test('a watch that etcd cancels (its revision compacted away) reloads the mirror and publishes what it missed, once', async () => {
    const loc = url();
    const writer = await open(loc);
    const reader = await open(loc);
    const seen: number[] = [];
    reader.watch((e) => seen.push(e.rev));
    // the reader's watch stops hearing (as one that fell behind) while the writer commits and etcd compacts
    const watcher = (reader as unknown as { watcher: { cancel(): Promise<void>; emit(ev: string, err: Error): void } }).watcher;
    await watcher.cancel();
    await writer.lock();
    for (let i = 0; i < 3; i++) await writer.commit({ ops: [{ table: 'plans', key: `p${i}`, value: plan(`p${i}`) }], events: [{ topic: 'plan', kind: 'plan-applied', message: `p${i}` }] });
    await writer.unlock();
    const raw = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
    try {
      const now = await raw.kv.range({ key: Buffer.from('/') });
      await raw.kv.compact({ revision: now.header.revision, physical: true });
    } finally {
      raw.close();
    }
    expect(reader.view().size('plans')).toBe(0);
    watcher.emit('error', new Error('Watcher canceled: etcdserver: mvcc: required revision has been compacted'));
    const deadline = Date.now() + 5_000;
    while (reader.view().size('plans') < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(reader.view().list('plans').map((p) => p.name).sort()).toEqual(['p0', 'p1', 'p2']);
    expect(seen).toEqual([1, 2, 3]);
    // and it follows again
    await writer.lock();
    await writer.commit({ ops: [{ table: 'plans', key: 'p3', value: plan('p3') }], events: [{ topic: 'plan', kind: 'plan-applied', message: 'p3' }] });
    await writer.unlock();
    await reader.refresh();
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  test('a state of 100k tasks: written in batches of 2,000 and read back by a new handle', async () => {
    const loc = url();
    const b = await open(loc);
    await b.lock();
    const t0 = performance.now();
    for (let batch = 0; batch < 50; batch++) {
      const ops = Array.from({ length: 2_000 }, (_, i) => {
        const id = `big/g/${batch * 2_000 + i}`;
        return { table: 'tasks' as const, key: id, value: task(id) };
      });
      await b.commit({ ops, events: [{ topic: 'plan', kind: 'plan-applied', plan: 'big', message: `batch ${batch}` }] });
    }
    const writeMs = performance.now() - t0;
    await b.unlock();
    const t1 = performance.now();
    const fresh = await open(loc);
    const readMs = performance.now() - t1;
    process.stderr.write(`etcd backend: 100k tasks written in ${(writeMs / 1000).toFixed(2)} s (50 commits of 2,000), read back by a new handle in ${(readMs / 1000).toFixed(2)} s\n`);
    expect(fresh.view().size('tasks')).toBe(100_000);
    expect(fresh.view().get('tasks', 'big/g/99999')).toEqual(task('big/g/99999'));
    expect(fresh.view().rev).toBe(50);
    // the writer's own watch skipped what it had applied: no event twice
    expect(b.eventsSince(0).events.map((e) => e.rev)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(writeMs + readMs).toBeLessThan(20_000);
  }, 40_000);
});

describe.skipIf(skip !== undefined)(`etcd backend, three members${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: EtcdCluster;
  const opened: EtcdBackend[] = [];

  beforeAll(async () => {
    cluster = await EtcdCluster.start({ members: 3 });
  });
  afterAll(async () => {
    for (const b of opened) await b.close().catch(() => undefined);
    await cluster?.stop();
  });

  test('one member killed: commits go on; quorum lost: a commit fails naming etcd within a bounded time, reads answer; quorum back (2 of 3): commits again', async () => {
    const loc = cluster.url('three');
    const b = await EtcdBackend.open(loc);
    const reader = await EtcdBackend.open(loc);
    opened.push(b, reader);
    const ms = await commitLatency(b, 30);
    process.stderr.write(`etcd backend: commit median ${ms.toFixed(2)} ms on 3 members (30 commits, fsync on)\n`);

    await cluster.kill(0);
    const t0 = Date.now();
    await b.lock();
    await b.commit({ ops: [{ table: 'plans', key: 'one-down', value: plan('one-down') }], events: [{ topic: 'plan', kind: 'plan-applied', message: 'one down' }] });
    const oneDown = Date.now() - t0;
    expect(oneDown).toBeLessThan(10_000);

    await cluster.kill(1);
    const t1 = Date.now();
    const err = (await b.commit({ ops: [{ table: 'plans', key: 'no-quorum', value: plan('no-quorum') }] }).catch((e: unknown) => e)) as StateError;
    const failedAfter = Date.now() - t1;
    expect(err).toMatchObject({
      code: 'E_STATE_UNAVAILABLE',
      message: expect.stringMatching(/^etcd did not answer the commit \(members 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+\).*may or may not be recorded/),
      hint: expect.stringMatching(/quorum/),
    });
    expect(failedAfter).toBeLessThan(10_000);
    // reads answer from the mirror, and refresh gives up on etcd instead of failing (the writer lets go meanwhile)
    const t2 = Date.now();
    await Promise.all([reader.refresh(), b.unlock()]);
    const refreshMs = Date.now() - t2;
    expect(refreshMs).toBeLessThan(10_000);
    expect(reader.view().get('plans', 'one-down')?.name).toBe('one-down');
    expect(reader.view().size('tasks')).toBe(30);
    // ...and say they may be stale: etcd named, since when, and the revision they hold
    expect(reader.staleness()).toMatchObject({
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      reason: expect.stringMatching(new RegExp(`^etcd did not answer a read \\(members 127\\.0\\.0\\.1:\\d+, [^)]*\\): .+; this is the state as this host last saw it \\(revision ${reader.view().rev}\\)$`)),
    });
    expect(Date.parse(reader.staleness()!.since)).toBeGreaterThanOrEqual(t2);
    // and it does not ask etcd again for a while: the next read answers at once
    const t3 = Date.now();
    await reader.refresh();
    expect(Date.now() - t3).toBeLessThan(100);
    expect(reader.staleness()).toBeDefined();
    process.stderr.write(`etcd backend: one member down: lock and commit in ${oneDown} ms; quorum lost: the commit failed after ${failedAfter} ms, a refresh gave up (and an unlock let go) after ${refreshMs} ms\n`);

    await cluster.restart(1);
    await b.lock({ timeoutMs: 15_000 });
    await b.commit({ ops: [{ table: 'plans', key: 'back', value: plan('back') }], events: [{ topic: 'plan', kind: 'plan-applied', message: 'back' }] });
    await b.unlock();
    // the reader's watch comes back by itself (its retries wait at most 1 s) and brings the commit
    const t4 = Date.now();
    while (!reader.view().get('plans', 'back') && Date.now() - t4 < 5_000) await reader.refresh().then(() => new Promise((r) => setTimeout(r, 20)));
    expect(reader.view().get('plans', 'back')?.name).toBe('back');
    expect(reader.staleness()).toBeUndefined();
    process.stderr.write(`etcd backend: quorum back: a reader caught up ${Date.now() - t4} ms after the commit\n`);
    // the commit without quorum either never happened or shows up whole: nothing half-written
    const fresh = await EtcdBackend.open(loc);
    opened.push(fresh);
    expect(fresh.view().list('plans').map((p) => p.name).sort()).toEqual(fresh.view().get('plans', 'no-quorum') ? ['back', 'no-quorum', 'one-down'] : ['back', 'one-down']);
    const revs = fresh.eventsSince(0).events.map((e) => e.rev);
    expect(revs).toEqual([...revs].sort((x, y) => x - y));
    expect(fresh.view().rev).toBe(b.view().rev);
  }, 60_000);
});
