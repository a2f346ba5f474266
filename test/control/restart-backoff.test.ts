/**
 * Restart backoff (issue 14) on a fake clock: the arithmetic of the waits, the rule that ends a
 * loop, what a pass notes and holds, what a fresh record keeps, and the events of a crash loop.
 */
import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  isCrashLoop,
  isStable,
  noteBackoffs,
  noteDeath,
  noteRestart,
  stableAfterMs,
  STABLE_MIN_MS,
} from '../../src/control/restart-backoff.js';
import { renderStatus } from '../../src/cli/render-status.js';
import { specHashOf } from '../../src/control/desired.js';
import { recordTaskStatus } from '../../src/control/snapshot.js';
import { loadPlanText } from '../../src/spec/index.js';
import type { PlanSpec } from '../../src/spec/model.js';
import type { TaskStatus } from '../../src/protocol/messages.js';
import { MemoryBackend } from '../../src/state/memory-backend.js';
import type { TaskRecord } from '../../src/state/types.js';
import { StateWork } from '../../src/state/work.js';

const DEFAULTS = { initialMs: 1000, factor: 2, maxMs: 300_000 };
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('backoff arithmetic', () => {
  it('the first restart of a loop is at once, then initial × factor^(n-1) up to max', () => {
    expect([0, 1, 2, 3, 4, 5, 8, 9, 10, 50].map((n) => backoffDelayMs(DEFAULTS, n))).toEqual([
      0, 1000, 2000, 4000, 8000, 16_000, 128_000, 256_000, 300_000, 300_000,
    ]);
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelayMs({ initialMs: 1000, factor: 2, maxMs: 8000 }, n))).toEqual([0, 1000, 2000, 4000, 8000, 8000]);
    expect([1, 2, 3].map((n) => backoffDelayMs({ initialMs: 500, factor: 1.5, maxMs: 60_000 }, n))).toEqual([500, 750, 1125]);
  });

  it('factor 1 keeps the wait constant; initial 0 turns the backoff off; a huge count stays at max', () => {
    expect([1, 2, 30].map((n) => backoffDelayMs({ initialMs: 3000, factor: 1, maxMs: 300_000 }, n))).toEqual([3000, 3000, 3000]);
    expect([1, 2, 30].map((n) => backoffDelayMs({ initialMs: 0, factor: 2, maxMs: 300_000 }, n))).toEqual([0, 0, 0]);
    expect(backoffDelayMs({ initialMs: 1000, factor: 100, maxMs: 300_000 }, 10_000)).toBe(300_000);
  });

  it('a loop is over after max(10 s, 2 × the wait the next death would get)', () => {
    expect(STABLE_MIN_MS).toBe(10_000);
    expect([1, 3, 4, 5, 9, 10].map((n) => stableAfterMs(DEFAULTS, n))).toEqual([10_000, 10_000, 16_000, 32_000, 512_000, 600_000]);
  });
});

describe('noteDeath, noteRestart, isStable', () => {
  it('dates the death by finishedAt when it is plausible, else by now', () => {
    const run = { startedAt: iso(T0), finishedAt: iso(T0 + 20) };
    expect(noteDeath(undefined, DEFAULTS, run, T0 + 1500)).toEqual({ restarts: 0, since: iso(T0 + 20), diedAt: iso(T0 + 20), delayMs: 0, nextAt: iso(T0 + 20) });
    const b = noteDeath({ restarts: 3, since: iso(T0 - 9000), lastRestartAt: iso(T0) }, DEFAULTS, run, T0 + 1500);
    expect(b).toEqual({ restarts: 3, since: iso(T0 - 9000), lastRestartAt: iso(T0), diedAt: iso(T0 + 20), delayMs: 4000, nextAt: iso(T0 + 4020) });
    // finished in the future (clock skew) or before it started (a stale exit): dated now
    expect(noteDeath(undefined, DEFAULTS, { startedAt: iso(T0), finishedAt: iso(T0 + 9000) }, T0 + 100).diedAt).toBe(iso(T0 + 100));
    expect(noteDeath(undefined, DEFAULTS, { startedAt: iso(T0), finishedAt: iso(T0 - 9000) }, T0 + 100).diedAt).toBe(iso(T0 + 100));
    expect(noteDeath(undefined, DEFAULTS, {}, T0 + 100).diedAt).toBe(iso(T0 + 100));
  });

  it('a run that stayed up long enough ends the loop before its death counts', () => {
    const prev = { restarts: 4, since: iso(T0 - 60_000), lastRestartAt: iso(T0) };
    // 4 restarts: the next wait is 8 s, so 16 s up ends the loop
    expect(noteDeath(prev, DEFAULTS, { startedAt: iso(T0), finishedAt: iso(T0 + 15_999) }, T0 + 20_000)).toMatchObject({ restarts: 4, delayMs: 8000 });
    expect(noteDeath(prev, DEFAULTS, { startedAt: iso(T0), finishedAt: iso(T0 + 16_000) }, T0 + 20_000)).toEqual({
      restarts: 0, since: iso(T0 + 16_000), diedAt: iso(T0 + 16_000), delayMs: 0, nextAt: iso(T0 + 16_000),
    });
  });

  it('noteRestart counts one more restart and forgets the wait', () => {
    expect(noteRestart({ restarts: 2, since: iso(T0), diedAt: iso(T0 + 5), delayMs: 2000, nextAt: iso(T0 + 2005) }, iso(T0 + 2100))).toEqual({
      restarts: 3, since: iso(T0), lastRestartAt: iso(T0 + 2100),
    });
  });

  it('isStable measures from the run start (the last restart when the agent gave none)', () => {
    const b = { restarts: 1, since: iso(T0), lastRestartAt: iso(T0) };
    expect(isStable(b, DEFAULTS, iso(T0 + 1000), T0 + 10_999)).toBe(false);
    expect(isStable(b, DEFAULTS, iso(T0 + 1000), T0 + 11_000)).toBe(true);
    expect(isStable(b, DEFAULTS, undefined, T0 + 10_000)).toBe(true);
  });
});

const PLAN = `name: p
processes:
  - name: crash
    command: ["false"]
    restartBackoff: {initial: 1s, factor: 2, max: 8s}
  - name: once
    command: ["false"]
    restart: on-failure
  - name: never
    command: ["false"]
    restart: never
`;

function setup(): { work: StateWork; plan: PlanSpec; hash: (g: string) => string } {
  const plan = loadPlanText(PLAN, 'p.yaml');
  const hash = (g: string) => specHashOf(plan, plan.groups.find((x) => x.name === g)!);
  return { work: new StateWork(new MemoryBackend()), plan, hash };
}

function status(task: string, specHash: string, over: Partial<TaskStatus>): TaskStatus {
  const [plan = 'p', group = 'g'] = task.split('/');
  return { task, driver: 'process', state: 'running', specHash, labels: { plan, group, project: 'default' }, ...over };
}

/** events lists the kinds of the events a unit of work holds (and forgets them). */
function eventsOf(work: StateWork): { kind: string; message: string }[] {
  const q = (work as unknown as { events: { kind: string; message: string }[] }).events;
  const out = [...q];
  q.length = 0;
  return out;
}

describe('a crash loop, pass by pass, on a fake clock', () => {
  it('spaces the restarts 0, 1, 2, 4, 8, 8 s after each death, one event per death, and holds what is not due', () => {
    const { work, plan, hash } = setup();
    const task = 'p/crash/0';
    const h = hash('crash');
    let now = T0;
    // started by an apply, it dies 10 ms later
    recordTaskStatus(work, 'a1', status(task, h, { state: 'running', pid: 1, startedAt: iso(now) }), iso(now));
    recordTaskStatus(work, 'a1', status(task, h, { state: 'failed', exitCode: 1, startedAt: iso(now), finishedAt: iso(now + 10) }), iso(now + 10));
    eventsOf(work);
    const restarts: number[] = [];
    const deaths: number[] = [now + 10];
    const events: string[] = [];
    // passes every 500 ms for 40 s
    for (now = T0 + 500; now <= T0 + 40_000; now += 500) {
      const held = noteBackoffs(work, [plan], now);
      events.push(...eventsOf(work).map((e) => e.kind));
      const rec = work.tasks.get(task)!;
      if (held.has(task)) {
        expect(held.get(task)).toBe(rec.backoff?.nextAt);
        expect(isCrashLoop(rec)).toBe((rec.backoff?.restarts ?? 0) >= 1);
        continue;
      }
      // due: the pass restarts it (what execute does), and it dies 10 ms later
      const b = rec.backoff!;
      expect(b.nextAt).toBeDefined();
      restarts.push(now);
      recordTaskStatus(work, 'a1', status(task, h, { state: 'running', pid: 2, startedAt: iso(now) }), iso(now));
      work.tasks.put({ ...work.tasks.get(task)!, backoff: noteRestart(b, iso(now)) });
      const death = recordTaskStatus(work, 'a1', status(task, h, { state: 'failed', exitCode: 1, startedAt: iso(now), finishedAt: iso(now + 10) }), iso(now + 10));
      expect(death).toBeUndefined(); // in a loop, the death is told by the pass that notes it
      deaths.push(now + 10);
    }
    const gaps = restarts.map((r, i) => r - deaths[i]!);
    const waits = restarts.map((_, i) => backoffDelayMs({ initialMs: 1000, factor: 2, maxMs: 8000 }, i));
    expect(waits.slice(0, 6)).toEqual([0, 1000, 2000, 4000, 8000, 8000]);
    for (let i = 0; i < restarts.length; i++) {
      expect(gaps[i]).toBeGreaterThanOrEqual(waits[i]!);
      expect(gaps[i]).toBeLessThan(waits[i]! + 500); // the next pass after it is due
    }
    // 40 s of passes every 0.5 s, each death 10 ms after its start: restarts at the first pass after death + wait
    expect(restarts.map((r) => (r - T0) / 1000)).toEqual([0.5, 2, 4.5, 9, 17.5, 26, 34.5]);
    // one event per death after the first restart; nothing else
    expect(events).toEqual(Array(restarts.length).fill('task-crash-loop'));
    const rec = work.tasks.get(task)!;
    expect(rec.backoff).toMatchObject({ restarts: 7, delayMs: 8000 });
  });

  it('a task that stays up leaves its loop (one task-backoff-reset event), and its next death is restarted at once', () => {
    const { work, plan, hash } = setup();
    const task = 'p/crash/0';
    const h = hash('crash');
    const started = T0;
    work.tasks.put({
      task, plan: 'p', group: 'crash', project: 'default', agent: 'a1', driver: 'process', specHash: h, state: 'running',
      resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, startedAt: iso(started), updatedAt: iso(started),
      backoff: { restarts: 4, since: iso(T0 - 60_000), lastRestartAt: iso(started) },
    });
    // 4 restarts: stable after 2 × 8 s = 16 s
    expect(noteBackoffs(work, [plan], started + 15_999).size).toBe(0);
    expect(work.tasks.get(task)?.backoff?.restarts).toBe(4);
    expect(noteBackoffs(work, [plan], started + 16_000).size).toBe(0);
    expect(work.tasks.get(task)?.backoff).toBeUndefined();
    expect(eventsOf(work).map((e) => e.kind)).toEqual(['task-backoff-reset']);
    // its next death: a plain death (observe tells it), restarted at once, no crash-loop event
    const ev = recordTaskStatus(work, 'a1', status(task, h, { state: 'failed', exitCode: 1, startedAt: iso(started), finishedAt: iso(started + 60_000) }), iso(started + 60_000));
    expect(ev?.kind).toBe('task-failed');
    expect(noteBackoffs(work, [plan], started + 60_500).size).toBe(0);
    expect(work.tasks.get(task)?.backoff).toMatchObject({ restarts: 0, delayMs: 0 });
    expect(eventsOf(work)).toEqual([]);
  });

  it('a death long after the last restart, noted by the next pass, ends the loop and is told once', () => {
    const { work, plan, hash } = setup();
    const task = 'p/crash/0';
    const h = hash('crash');
    work.tasks.put({
      task, plan: 'p', group: 'crash', project: 'default', agent: 'a1', driver: 'process', specHash: h, state: 'failed', exitCode: 3,
      resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, startedAt: iso(T0), finishedAt: iso(T0 + 3_600_000), updatedAt: iso(T0),
      backoff: { restarts: 6, since: iso(T0 - 60_000), lastRestartAt: iso(T0) },
    });
    expect(noteBackoffs(work, [plan], T0 + 3_600_100).size).toBe(0);
    expect(work.tasks.get(task)?.backoff).toMatchObject({ restarts: 0, delayMs: 0 });
    expect(eventsOf(work).map((e) => e.kind)).toEqual(['task-failed']);
  });

  it('leaves alone: restart never, on-failure after a clean exit, a task whose spec changed, tasks of other plans, stopped and lost tasks', () => {
    const { work, plan, hash } = setup();
    const base = (task: string, group: string, over: Partial<TaskRecord>): TaskRecord => ({
      task, plan: 'p', group, project: 'default', agent: 'a1', driver: 'process', specHash: hash(group), state: 'failed',
      resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, startedAt: iso(T0), finishedAt: iso(T0), updatedAt: iso(T0),
      backoff: { restarts: 2, since: iso(T0), lastRestartAt: iso(T0) }, ...over,
    });
    work.tasks.put(base('p/never/0', 'never', {}));
    work.tasks.put(base('p/once/0', 'once', { state: 'finished', exitCode: 0 }));
    work.tasks.put(base('p/crash/0', 'crash', { specHash: 'changed' }));
    work.tasks.put(base('p/crash/1', 'crash', { state: 'stopped' }));
    work.tasks.put(base('p/crash/2', 'crash', { state: 'lost' }));
    work.tasks.put(base('q/crash/0', 'crash', { plan: 'q' }));
    const before = work.tasks.values().map((t) => JSON.stringify(t));
    expect(noteBackoffs(work, [plan], T0 + 100).size).toBe(0);
    expect(work.tasks.values().map((t) => JSON.stringify(t))).toEqual(before);
    expect(eventsOf(work)).toEqual([]);
    // on-failure still spaces the restarts of a failed task
    work.tasks.put(base('p/once/1', 'once', { state: 'failed', exitCode: 1 }));
    expect([...noteBackoffs(work, [plan], T0 + 100)]).toEqual([['p/once/1', iso(T0 + 2000)]]);
  });

  it('the event says the count, the cause and when the next restart is', () => {
    const { work, plan, hash } = setup();
    work.tasks.put({
      task: 'p/crash/0', plan: 'p', group: 'crash', project: 'default', agent: 'a1', driver: 'process', specHash: hash('crash'), state: 'failed', exitCode: 1,
      resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, startedAt: iso(T0), finishedAt: iso(T0 + 5), updatedAt: iso(T0),
      backoff: { restarts: 3, since: iso(T0 - 7000), lastRestartAt: iso(T0) },
    });
    noteBackoffs(work, [plan], T0 + 600);
    expect(eventsOf(work)).toEqual([
      expect.objectContaining({
        kind: 'task-crash-loop',
        message: `p/crash/0 crash loop on a1: died again (exit code 1) after 3 restarts since ${iso(T0 - 7000)}; restart 4 at ${iso(T0 + 4005)} (backoff 4s)`,
      }),
    ]);
    // noted once: the next pass holds it without a second event
    expect(noteBackoffs(work, [plan], T0 + 1100).get('p/crash/0')).toBe(iso(T0 + 4005));
    expect(eventsOf(work)).toEqual([]);
  });
});

describe('fresh records of a task keep its backoff', () => {
  it('kept for the same spec, the wait dropped once a new run starts, all dropped for a new spec', () => {
    const { work, hash } = setup();
    const h = hash('crash');
    const task = 'p/crash/0';
    const waiting = { restarts: 2, since: iso(T0), lastRestartAt: iso(T0), diedAt: iso(T0 + 5), delayMs: 2000, nextAt: iso(T0 + 2005) };
    work.tasks.put({
      task, plan: 'p', group: 'crash', project: 'default', agent: 'a1', driver: 'process', specHash: h, state: 'failed',
      resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, startedAt: iso(T0), finishedAt: iso(T0 + 5), updatedAt: iso(T0), backoff: waiting,
    });
    // the same run reported again: nothing changes
    recordTaskStatus(work, 'a1', status(task, h, { state: 'failed', exitCode: 1, startedAt: iso(T0), finishedAt: iso(T0 + 5) }), iso(T0 + 500));
    expect(work.tasks.get(task)?.backoff).toEqual(waiting);
    // started again by hand (factory's restart of one task): the count stays, the wait goes
    recordTaskStatus(work, 'a1', status(task, h, { state: 'running', pid: 9, startedAt: iso(T0 + 900) }), iso(T0 + 900));
    expect(work.tasks.get(task)?.backoff).toEqual({ restarts: 2, since: iso(T0), lastRestartAt: iso(T0) });
    // a new spec (an update): a new task, no loop
    recordTaskStatus(work, 'a1', status(task, 'other', { state: 'running', pid: 10, startedAt: iso(T0 + 1000) }), iso(T0 + 1000));
    expect(work.tasks.get(task)?.backoff).toBeUndefined();
  });
});

describe('status shows a crash loop', () => {
  it('as the STATE crash-loop with its next restart, and the count of a task up again in its loop', () => {
    const task = (t: string, over: object) => ({ task: t, group: 'crash', plan: 'p', project: 'default', agent: 'a1', driver: 'process', state: 'failed', ...over });
    const out = renderStatus(
      {
        agents: [],
        tasks: [
          task('p/crash/0', { exitCode: 1, restarts: 5, crashLoop: true, nextRestartAt: iso(T0 + 8000), backoffMs: 8000 }),
          task('p/crash/1', { exitCode: 1, restarts: 1, crashLoop: true }),
          task('p/crash/2', { state: 'running', pid: 42, restarts: 3 }),
          task('p/crash/3', { state: 'running', pid: 43 }),
        ],
        refreshed: true,
      },
      { cached: false, events: 0 },
      T0 + 2500,
    );
    const rows = out.split('\n').filter((l) => l.startsWith('p/crash/'));
    expect(rows.map((l) => l.replace(/\s+/g, ' '))).toEqual([
      'p/crash/0 a1 process - crash-loop exit 1; restart 6 at 00:00:08Z (in 6s)',
      'p/crash/1 a1 process - crash-loop exit 1; 1 restart, next at the next pass',
      'p/crash/2 a1 process 42 running 3 restarts',
      'p/crash/3 a1 process 43 running',
    ]);
  });
});
