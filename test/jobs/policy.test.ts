import { describe, expect, it } from 'vitest';
import { afterTrigger, decideManualRun, decideSlots, pruneHistory, retryDelayMs, type JobSettings } from '../../src/jobs/policy.js';
import { parseSchedule } from '../../src/jobs/schedule.js';

const T = (s: string) => Date.parse(`2026-12-01T${s}Z`);
const iso = (t: number) => new Date(t).toISOString().slice(11, 19);
const base: JobSettings = { concurrency: 'allow', catchUp: 'none', catchUpMax: 10, suspend: false };
const everySecond = parseSchedule('* * * * * *');
const everyMinute = parseSchedule('* * * * *');

function decide(over: Partial<Omit<Parameters<typeof decideSlots>[0], 'settings'>> & { settings?: Partial<JobSettings> }) {
  const d = decideSlots({
    schedule: everySecond,
    suspended: false,
    cursor: T('00:00:00'),
    now: T('00:00:01'),
    hostStartedAt: T('00:00:00'),
    active: [],
    ...over,
    settings: { ...base, ...over.settings },
  });
  return {
    run: d.run.map((r) => `${iso(r.slot)}${r.catchUp ? ' catch-up' : ''}`),
    missed: d.missed.map((m) => `${iso(m.slot)} ${m.reason}`),
    skipped: d.skipped.map((m) => `${iso(m.slot)} ${m.reason}`),
    replace: d.replace,
    cursor: iso(d.cursor),
    next: d.next === undefined ? undefined : iso(d.next),
    range: d.missedRange && { ...d.missedRange, from: iso(d.missedRange.from), until: iso(d.missedRange.until) },
  };
}

describe('decideSlots: every due slot is run, missed or skipped, once', () => {
  it('runs the slot that came due and moves the cursor to now', () => {
    expect(decide({})).toMatchObject({ run: ['00:00:01'], missed: [], skipped: [], cursor: '00:00:01', next: '00:00:02' });
  });

  it('does nothing before the next slot, and never twice for the same slot', () => {
    expect(decide({ cursor: T('00:00:01'), now: T('00:00:01') })).toMatchObject({ run: [], cursor: '00:00:01', next: '00:00:02' });
    expect(decide({ cursor: T('00:00:01'), now: T('00:00:01.900') })).toMatchObject({ run: [], next: '00:00:02' });
  });

  it('a host that stalled runs only the newest slot; the older ones are missed with a reason', () => {
    expect(decide({ now: T('00:00:03.200') })).toMatchObject({
      run: ['00:00:03'],
      missed: ['00:00:01 a later slot came due before it could start', '00:00:02 a later slot came due before it could start'],
    });
  });

  it.each([
    ['none', [], ['00:00:01', '00:00:02', '00:00:03', '00:00:04']],
    ['latest', ['00:00:04 catch-up'], ['00:00:01', '00:00:02', '00:00:03']],
    ['all', ['00:00:02 catch-up', '00:00:03 catch-up', '00:00:04 catch-up'], ['00:00:01']],
  ] as const)('catchUp: %s for slots that came due while no host ran', (catchUp, run, missed) => {
    const d = decide({ hostStartedAt: T('00:00:04.500'), now: T('00:00:04.600'), settings: { catchUp, catchUpMax: 3 } });
    expect(d.run).toEqual(run);
    expect(d.missed.map((m) => m.slice(0, 8))).toEqual(missed);
  });

  it('startingDeadline turns a slot too old to start into a missed one', () => {
    const d = decide({ hostStartedAt: T('00:00:30'), now: T('00:00:30.100'), cursor: T('00:00:27.500'), settings: { catchUp: 'all', startingDeadlineMs: 1500 } });
    expect(d.run).toEqual(['00:00:29 catch-up', '00:00:30']);
    expect(d.missed).toEqual(['00:00:28 not started within its startingDeadline (2 s)']);
  });

  it('a suspended job skips its slots (and still moves on)', () => {
    expect(decide({ suspended: true, now: T('00:00:02') })).toMatchObject({ run: [], skipped: ['00:00:01 the job is suspended', '00:00:02 the job is suspended'], cursor: '00:00:02' });
    expect(decide({ settings: { suspend: true } }).skipped).toHaveLength(1);
  });

  it.each([
    ['allow', ['00:00:01'], [], []],
    ['forbid', [], ['00:00:01 concurrency: forbid, run p/j/1 is still running'], []],
    ['replace', ['00:00:01'], [], ['p/j/1']],
  ] as const)('concurrency: %s while a run still runs', (concurrency, run, skipped, replace) => {
    const d = decide({ active: [{ id: 'p/j/1', slot: T('00:00:00') }], settings: { concurrency } });
    expect(d.run).toEqual(run);
    expect(d.skipped).toEqual(skipped);
    expect(d.replace).toEqual(replace);
  });

  it('forbid with several slots to catch up runs the first and skips the rest', () => {
    const d = decide({ hostStartedAt: T('00:00:10'), now: T('00:00:10'), cursor: T('00:00:07.5'), settings: { catchUp: 'all', concurrency: 'forbid' } });
    expect(d.run).toEqual(['00:00:08 catch-up']);
    expect(d.skipped.map((s) => s.slice(0, 8))).toEqual(['00:00:09', '00:00:10']);
  });

  it('a window larger than the listing bound is one missed range with its count, never silent', () => {
    const d = decide({ schedule: everyMinute, cursor: T('00:00:00'), now: T('10:00:30'), hostStartedAt: T('10:00:10'), listLimit: 100 });
    expect(d.run).toEqual([]);
    expect(d.range).toEqual({ from: '00:01:00', until: '10:00:00', count: 599, exact: true });
    expect(d.missed).toEqual(['10:00:00 no control host ran at the slot (catchUp: none)']);
    const latest = decide({ schedule: everyMinute, cursor: T('00:00:00'), now: T('10:00:30'), hostStartedAt: T('10:00:10'), listLimit: 100, settings: { catchUp: 'latest' } });
    expect(latest.run).toEqual(['10:00:00 catch-up']);
    expect(latest.range?.count).toBe(599);
  });

  it('a schedule that ended has no next slot', () => {
    const twice = parseSchedule('R2/2026-12-01T00:00:01Z/PT1S');
    expect(decide({ schedule: twice, now: T('00:00:05') })).toMatchObject({ run: ['00:00:02'], missed: ['00:00:01 a later slot came due before it could start'], next: undefined });
  });
});

describe('manual runs, dependencies, retries, history', () => {
  it('a manual run honours concurrency unless forced', () => {
    const active = [{ id: 'p/j/1', slot: 0 }];
    expect(decideManualRun({ concurrency: 'forbid' }, active, false)).toEqual({ start: false, reason: 'concurrency: forbid, run p/j/1 is still running (--force runs it anyway)' });
    expect(decideManualRun({ concurrency: 'forbid' }, active, true)).toEqual({ start: true, replace: [] });
    expect(decideManualRun({ concurrency: 'replace' }, active, false)).toEqual({ start: true, replace: ['p/j/1'] });
    expect(decideManualRun({ concurrency: 'forbid' }, [], false)).toEqual({ start: true, replace: [] });
  });

  it('a dependent job triggers once every parent succeeded since its cursor', () => {
    expect(afterTrigger([10, 20], 5)).toBe(20);
    expect(afterTrigger([10, undefined], 5)).toBeUndefined();
    expect(afterTrigger([10, 20], 15)).toBeUndefined();
    expect(afterTrigger([], 0)).toBeUndefined();
  });

  it('retries back off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelayMs(10_000, a, 60_000))).toEqual([10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
  });

  it('history keeps exactly the newest N succeeded and M failed runs', () => {
    const runs = Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, slot: i, succeeded: i % 2 === 0 }));
    expect(pruneHistory(runs, { succeeded: 3, failed: 2 }).sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r5'].sort());
    expect(pruneHistory(runs, { succeeded: 0, failed: 0 })).toHaveLength(10);
  });
});
