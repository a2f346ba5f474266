/**
 * The behaviour every StateBackend that persists owes its callers, as one suite that each backend's
 * test file runs with its own locations (a fresh directory, a fresh etcd prefix): ids and reopen,
 * the writers' lock (waiting, naming the holder, taking over a killed holder), guards, watch and
 * refresh across handles, event revisions and retention, and what one change writes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import type { StateBackend } from '../../src/state/backend.js';
import type { EventRetention } from '../../src/state/event-log.js';
import { openState } from '../../src/state/open.js';
import { STATE_ID_RE } from '../../src/state/state-id.js';
import { StateWork } from '../../src/state/work.js';
import { deployment, plan, put, task } from './records.js';
import type { StateError } from '../../src/errors.js';

/** ContractTarget names the backend under test: a fresh location for each test, or why it is skipped. */
export interface ContractTarget {
  /** location returns a new, empty state location. */
  location(): string;
  skip?: string;
}


/** describeBackendContract runs the shared suite against one backend. */
export function describeBackendContract(name: string, target: () => ContractTarget): void {
  const t = target();
  describe.skipIf(t.skip !== undefined)(`StateBackend contract: ${name}${t.skip ? ` (skipped: ${t.skip})` : ''}`, () => {
    const opened: StateBackend[] = [];
    const open = async (location: string, retention?: EventRetention) => {
      const b = await openState(location, retention ? { retention } : {});
      opened.push(b);
      return b;
    };
    const closeAll = async () => {
      for (const b of opened.splice(0)) await b.close().catch(() => undefined);
    };

    test('a new state gets an id; commits survive a reopen, with their events and revisions', async () => {
      const loc = t.location();
      try {
        const b = await open(loc);
        expect(b.id).toMatch(STATE_ID_RE);
        expect(b.view().rev).toBe(0);
        await put(b, 'a');
        await put(b, 'b');
        const again = await open(loc);
        expect(again.id).toBe(b.id);
        expect(again.view().list('plans').map((p) => p.name).sort()).toEqual(['a', 'b']);
        expect(again.view().rev).toBe(2);
        expect(again.eventsSince(0).events.map((e) => [e.rev, e.kind, e.topic])).toEqual([[1, 'plan-applied', 'plan'], [2, 'plan-applied', 'plan']]);
        // a commit without events still moves the revision
        await again.lock();
        await again.commit({ ops: [{ table: 'plans', key: 'a' }] });
        await again.unlock();
        const third = await open(loc);
        expect(third.view().rev).toBe(3);
        expect(third.view().get('plans', 'a')).toBeUndefined();
      } finally {
        await closeAll();
      }
    });

    test('a second writer waits for the lock, names the holder, and sees the first writer’s changes', async () => {
      const loc = t.location();
      try {
        const a = await open(loc);
        const b = await open(loc);
        await a.lock({ purpose: 'plan apply' });
        const err = await b.lock({ timeoutMs: 300 }).catch((e: unknown) => e);
        expect((err as StateError).code).toBe('E_STATE_LOCKED');
        expect((err as StateError).message).toMatch(/locked by another factory process \(pid \d+, plan apply/);
        expect(b.locked).toBe(false);
        const w = new StateWork(a);
        w.plans.put(plan('x'));
        await w.flush();
        const waited: string[] = [];
        const waiting = b.lock({ timeoutMs: 5_000, onWait: (who) => waited.push(who) });
        setTimeout(() => void a.unlock(), 200);
        await waiting;
        expect(waited).toEqual([expect.stringMatching(/plan apply/)]);
        expect(b.view().list('plans').map((p) => p.name)).toEqual(['x']);
        await b.unlock();
      } finally {
        await closeAll();
      }
    });

    test('requests of one process on one handle take the lock in turn; one that will not wait is refused at once', async () => {
      const loc = t.location();
      try {
        const a = await open(loc);
        await a.lock({ purpose: 'first' });
        const err = await a.lock({ timeoutMs: 0 }).catch((e: unknown) => e);
        expect((err as StateError).code).toBe('E_STATE_LOCKED');
        expect((err as StateError).message).toMatch(/locked by another request of this process/);
        const order: string[] = [];
        const second = a.lock({ purpose: 'second' }).then(() => order.push('second in'));
        await new Promise((r) => setTimeout(r, 100));
        order.push('first out');
        await a.unlock();
        await second;
        expect(order).toEqual(['first out', 'second in']);
        expect(a.locked).toBe(true);
        await a.unlock();
      } finally {
        await closeAll();
      }
    });

    test('a lock held by a process that was killed is taken over at once, with a note', async () => {
      const loc = t.location();
      const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
        const { openState } = await import(${JSON.stringify(path.resolve('src/state/open.ts'))});
        const b = await openState(${JSON.stringify(loc)});
        await b.lock({ purpose: 'plan apply' });
        process.stdout.write('locked\\n');
        setInterval(() => {}, 1000);
      `], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
          child.on('exit', (c) => reject(new Error(`child exited ${c}`)));
        });
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        const b = await open(loc);
        const notes: string[] = [];
        const write = process.stderr.write.bind(process.stderr);
        process.stderr.write = ((s: string) => (notes.push(String(s)), true)) as typeof process.stderr.write;
        const t0 = Date.now();
        try {
          await b.lock({ timeoutMs: 8_000 });
        } finally {
          process.stderr.write = write;
        }
        // waiting for the dead holder's lock to go stale (file: 10 s) or its lease to expire (etcd: 5 s) would be slower
        expect(Date.now() - t0).toBeLessThan(3_000);
        expect(notes.join('')).toMatch(new RegExp(`took over the state lock of pid ${child.pid}, plan apply.*that process is gone`));
        await b.unlock();
      } finally {
        child.kill('SIGKILL');
        await closeAll();
      }
    }, 60_000);

    test('a commit needs the lock; a guard that no longer holds fails the whole transaction', async () => {
      const loc = t.location();
      try {
        const b = await open(loc);
        await expect(b.commit({ ops: [] })).rejects.toMatchObject({ code: 'E_STATE_UNLOCKED' });
        await put(b, 'a');
        await b.lock();
        const rev = b.view().modRev('plans', 'a');
        expect(rev).toBe(1);
        await expect(b.commit({ ops: [{ table: 'plans', key: 'z', value: plan('z') }], guards: [{ table: 'plans', key: 'a', rev: rev - 1 }] })).rejects.toMatchObject({ code: 'E_STATE_CONFLICT' });
        // a guard of 0 means absent: it fails on a record that exists
        await expect(b.commit({ ops: [{ table: 'plans', key: 'z', value: plan('z') }], guards: [{ table: 'plans', key: 'a', rev: 0 }] })).rejects.toMatchObject({ code: 'E_STATE_CONFLICT' });
        expect(b.view().get('plans', 'z')).toBeUndefined();
        expect(b.view().rev).toBe(1);
        await b.commit({ ops: [{ table: 'plans', key: 'z', value: plan('z') }], guards: [{ table: 'plans', key: 'a', rev }, { table: 'plans', key: 'new', rev: 0 }] });
        expect(b.view().get('plans', 'z')?.name).toBe('z');
        expect(b.view().modRev('plans', 'z')).toBe(2);
        await b.unlock();
        const again = await open(loc);
        expect(again.view().list('plans').map((p) => p.name).sort()).toEqual(['a', 'z']);
      } finally {
        await closeAll();
      }
    });

    test('a reader refreshing after another handle’s commits sees every event once, in order', async () => {
      const loc = t.location();
      try {
        const writer = await open(loc);
        const reader = await open(loc);
        const seen: number[] = [];
        reader.watch((e) => seen.push(e.rev));
        for (let i = 0; i < 5; i++) {
          await put(writer, `p${i}`);
          await reader.refresh();
          expect(reader.view().size('plans')).toBe(i + 1);
        }
        expect(seen).toEqual([1, 2, 3, 4, 5]);
        expect(reader.eventsSince(3).events.map((e) => e.rev)).toEqual([4, 5]);
      } finally {
        await closeAll();
      }
    });

    test('a handle that commits quickly sees its own events once each, in order', async () => {
      const loc = t.location();
      try {
        const b = await open(loc);
        const seen: number[] = [];
        b.watch((e) => seen.push(e.rev));
        for (let i = 0; i < 40; i++) {
          await put(b, `p${i}`);
          if (i % 3 === 0) await new Promise((r) => setTimeout(r, 2));
        }
        expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
        const again = await open(loc);
        expect(again.view().size('plans')).toBe(40);
        expect(again.eventsSince(0).events.map((e) => e.rev)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      } finally {
        await closeAll();
      }
    });

    test('one change in a state of 6,000 tasks writes in proportion to the change, not the state', async () => {
      const loc = t.location();
      try {
        const b = await open(loc);
        await b.lock();
        const w = new StateWork(b);
        for (let batch = 0; batch < 3; batch++) {
          for (let i = 0; i < 2_000; i++) w.tasks.put(task(`a/g/${batch * 2_000 + i}`));
          await w.flush();
        }
        const before = b.stats().bytesWritten;
        w.tasks.put(task('a/g/7', 'exited'));
        w.event({ kind: 'task-exited', task: 'a/g/7', message: 'a/g/7 exited' });
        await w.flush();
        await b.unlock();
        const written = b.stats().bytesWritten - before;
        expect(written).toBeGreaterThan(0);
        expect(written).toBeLessThan(2_000);
        const again = await open(loc);
        expect(again.view().get('tasks', 'a/g/7')?.state).toBe('exited');
        expect(again.view().size('tasks')).toBe(6_000);
        expect(again.eventsSince(0).events.at(-1)).toMatchObject({ project: 'p', plan: 'a', task: 'a/g/7' });
      } finally {
        await closeAll();
      }
    });

    test('each deployment is its own record: progress rewrites one key, events are on topic deployment', async () => {
      const loc = t.location();
      try {
        const b = await open(loc);
        await b.lock();
        const w = new StateWork(b);
        for (const id of ['dep-0000000001', 'dep-0000000002']) w.deployments.put(deployment(id));
        w.event({ kind: 'deployment-started', deployment: 'dep-0000000001', plan: 'a', message: 'rolling a/g' });
        await w.flush();
        const before = b.stats().bytesWritten;
        w.deployments.put({ ...deployment('dep-0000000002'), status: 'succeeded' });
        await w.flush();
        await b.unlock();
        // the other deployment is not rewritten: one record is one key (etcd takes 1.5 MiB a request)
        expect(b.stats().bytesWritten - before).toBeLessThan(JSON.stringify(deployment('x')).length * 1.5);
        const again = await open(loc);
        expect(again.view().list('deployments').map((d) => [d.id, d.status]).sort()).toEqual([['dep-0000000001', 'running'], ['dep-0000000002', 'succeeded']]);
        expect(again.eventsSince(0).events.map((e) => [e.topic, e.kind, e.deployment, e.project])).toEqual([['deployment', 'deployment-started', 'dep-0000000001', 'p']]);
      } finally {
        await closeAll();
      }
    });

    describe('events', () => {
      const retention = { maxEvents: 50, maxAgeMs: 3600_000, perSubject: 10 };

      test('one crash-looping task cannot push the other events out, and a reopen keeps the same ones', async () => {
        const loc = t.location();
        try {
          const b = await open(loc, retention);
          await b.lock();
          const w = new StateWork(b);
          w.event({ kind: 'agent-back', agent: 'a1', message: 'a1 back' });
          w.event({ kind: 'plan-applied', plan: 'web', message: 'applied web' });
          await w.flush();
          for (let round = 0; round < 5; round++) {
            for (let i = 0; i < 100; i++) w.event({ kind: 'task-failed', task: 'bad/g/0', message: `failed ${round * 100 + i}` });
            await w.flush();
          }
          await b.unlock();
          const page = b.eventsSince(0);
          expect(page.reset).toBe(true);
          const kept = page.events;
          expect(kept.filter((e) => e.task === 'bad/g/0')).toHaveLength(10);
          expect(kept.map((e) => e.kind)).toContain('agent-back');
          expect(kept.map((e) => e.kind)).toContain('plan-applied');
          // the revisions of the kept events still grow by one per event committed
          expect(kept.at(-1)!.rev).toBe(502);
          const again = await open(loc, retention);
          expect(again.eventsSince(0).events.map((e) => e.rev)).toEqual(kept.map((e) => e.rev));
          expect(again.eventsSince(0).reset).toBe(true);
        } finally {
          await closeAll();
        }
      });

      test('a reader behind the dropped revisions is told to reset, never silently skipped', async () => {
        const loc = t.location();
        try {
          const b = await open(loc, retention);
          await b.lock();
          const w = new StateWork(b);
          for (let i = 0; i < 120; i++) w.event({ kind: 'task-started', task: `a/g/${i}`, message: 'x' });
          await w.flush();
          await b.unlock();
          for (const h of [b, await open(loc, retention)]) {
            expect(h.eventsSince(3).reset).toBe(true);
            const page = h.eventsSince(110);
            expect(page.reset).toBe(false);
            expect(page.events.map((e) => e.rev)).toEqual(Array.from({ length: 10 }, (_, i) => 111 + i));
            expect(page.latest).toBe(120);
          }
        } finally {
          await closeAll();
        }
      });

      test('watchers get every committed event in order; events carry who, plan and project', async () => {
        const loc = t.location();
        try {
          const b = await open(loc);
          const seen: string[] = [];
          b.watch((e) => seen.push(`${e.rev}:${e.kind}:${e.project ?? ''}`));
          await b.lock();
          const w = new StateWork(b, 'fct_000000000001');
          w.tasks.put({ ...task('a/g/0'), project: 'blue' });
          w.event({ kind: 'task-started', task: 'a/g/0', message: 'started' });
          await w.flush();
          await b.unlock();
          expect(seen).toEqual(['1:task-started:blue']);
          expect(b.eventsSince(0).events[0]).toMatchObject({ by: 'fct_000000000001', plan: 'a', topic: 'task' });
        } finally {
          await closeAll();
        }
      });
    });
  });
}
