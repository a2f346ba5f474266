import { describe, expect, it } from 'vitest';
import { countSlots, memoNext, parseSchedule, ScheduleError, slotsBetween } from '../../src/jobs/schedule.js';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

/** nextN lists the first n slots strictly after `from`. */
function nextN(schedule: string, zone: string, from: string, n: number): (string | undefined)[] {
  const s = parseSchedule(schedule, zone);
  const out: (string | undefined)[] = [];
  let t: number | undefined = ms(from);
  for (let i = 0; i < n && t !== undefined; i++) {
    t = s.next(t);
    out.push(iso(t));
  }
  return out;
}

describe('job slots: a pure function of schedule, zone, last slot and now', () => {
  it.each([
    // [schedule, zone, after, expected next slots]
    ['* * * * * *', 'UTC', '2026-12-01T00:00:00.500Z', ['2026-12-01T00:00:01.000Z', '2026-12-01T00:00:02.000Z', '2026-12-01T00:00:03.000Z']],
    ['* * * * * *', 'UTC', '2026-12-01T00:00:01.000Z', ['2026-12-01T00:00:02.000Z', '2026-12-01T00:00:03.000Z', '2026-12-01T00:00:04.000Z']],
    ['0 2 * * *', 'UTC', '2026-12-01T02:00:00.000Z', ['2026-12-02T02:00:00.000Z', '2026-12-03T02:00:00.000Z', '2026-12-04T02:00:00.000Z']],
    ['@hourly', 'UTC', '2026-12-01T00:10:00Z', ['2026-12-01T01:00:00.000Z', '2026-12-01T02:00:00.000Z', '2026-12-01T03:00:00.000Z']],
    ['@daily', 'Asia/Tokyo', '2026-12-01T00:00:00Z', ['2026-12-01T15:00:00.000Z', '2026-12-02T15:00:00.000Z', '2026-12-03T15:00:00.000Z']],
    ['*/20 * * * *', 'UTC', '2026-12-01T00:00:00Z', ['2026-12-01T00:20:00.000Z', '2026-12-01T00:40:00.000Z', '2026-12-01T01:00:00.000Z']],
    // DST, Europe/Berlin: spring forward 2026-03-29 02:00 → 03:00 (CET → CEST)
    ['30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']],
    // fall back 2026-10-25 03:00 → 02:00: 02:30 happens twice and runs once, at the first
    ['30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']],
    // America/New_York: spring 2026-03-08 02:00 → 03:00, fall 2026-11-01 02:00 → 01:00
    ['30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']],
    ['30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']],
    // a schedule stepping through the hours keeps elapsed time: both passes of the repeated hour
    ['*/30 * * * *', 'Europe/Berlin', '2026-10-25T00:10:00Z', ['2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T02:00:00.000Z']],
    // ISO 8601 repeating intervals, as Chronos took them
    ['R/2026-12-01T02:00:00Z/PT6H', 'UTC', '2026-11-30T00:00:00Z', ['2026-12-01T02:00:00.000Z', '2026-12-01T08:00:00.000Z', '2026-12-01T14:00:00.000Z']],
    ['R/2026-12-01T02:00:00Z/PT6H', 'UTC', '2027-03-05T09:00:00Z', ['2027-03-05T14:00:00.000Z', '2027-03-05T20:00:00.000Z']],
    ['R2/2026-12-01T02:00:00Z/P1D', 'UTC', '2026-11-01T00:00:00Z', ['2026-12-01T02:00:00.000Z', '2026-12-02T02:00:00.000Z', undefined]],
    ['R/2026-01-31T00:00:00Z/P1M', 'UTC', '2026-01-31T00:00:00Z', ['2026-02-28T00:00:00.000Z', '2026-03-31T00:00:00.000Z']],
    // a calendar period keeps the wall clock across DST and runs at the end of a gap
    ['R/2026-03-27T02:30:00/P1D', 'Europe/Berlin', '2026-03-26T00:00:00Z', ['2026-03-27T01:30:00.000Z', '2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']],
    ['R/2026-10-23T02:30:00/P1D', 'Europe/Berlin', '2026-10-23T12:00:00Z', ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']],
    // an hour-based period keeps elapsed time
    ['R/2026-03-28T02:30:00/PT24H', 'Europe/Berlin', '2026-03-28T00:00:00Z', ['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z']],
  ] as [string, string, string, (string | undefined)[]][])('%s in %s after %s', (schedule, zone, after, want) => {
    expect(nextN(schedule, zone, after, want.length)).toEqual(want);
  });

  it.each([
    ['* * * *', /4 field\(s\)/],
    ['61 * * * *', /invalid schedule '61 \* \* \* \*'.*minute/],
    ['@fortnightly', /unknown schedule macro '@fortnightly'/],
    ['R/2026-12-01T02:00:00Z/P', /invalid period 'P'/],
    ['R/yesterday/PT1H', /invalid start 'yesterday'/],
    ['R/2026-12-01T02:00:00Z/PT0.1S', /shorter than one second/],
    ['R/2026-12-01T02:00:00Z', /expected R\[n\]\/<start>\/<period>/],
  ])('refuses %s with a message that says why', (schedule, re) => {
    expect(() => parseSchedule(schedule)).toThrow(ScheduleError);
    expect(() => parseSchedule(schedule)).toThrow(re);
  });

  it('refuses an unknown time zone by name', () => {
    expect(() => parseSchedule('* * * * *', 'Mars/Base')).toThrow(/unknown time zone 'Mars\/Base'/);
  });

  it('lists the slots of a window, bounded, and counts the rest', () => {
    const s = parseSchedule('* * * * * *');
    const w = slotsBetween(s, ms('2026-12-01T00:00:00Z'), ms('2026-12-01T00:00:10Z'));
    expect(w.slots.map(iso)).toHaveLength(10);
    expect(iso(w.slots[0])).toBe('2026-12-01T00:00:01.000Z');
    expect(iso(w.slots[9])).toBe('2026-12-01T00:00:10.000Z');
    expect(iso(w.nextAfter)).toBe('2026-12-01T00:00:11.000Z');
    const cut = slotsBetween(s, ms('2026-12-01T00:00:00Z'), ms('2026-12-01T01:00:00Z'), 100);
    expect(cut.slots).toHaveLength(100);
    expect(cut.more).toBe(true);
    expect(countSlots(s, ms('2026-12-01T00:00:00Z'), ms('2026-12-01T01:00:00Z'))).toEqual({ count: 3600, exact: true });
  });

  it('memoNext answers as its schedule does, asking it once per instant (jobs that share a schedule)', () => {
    const s = parseSchedule('*/20 * * * * *', 'Europe/Berlin');
    let calls = 0;
    const counted = { ...s, next: (t: number) => (calls++, s.next(t)) };
    const m = memoNext(counted, 4);
    const t0 = ms('2026-12-01T00:00:05Z');
    for (let i = 0; i < 1000; i++) expect(iso(m.next(t0))).toBe('2026-12-01T00:00:20.000Z');
    expect(calls).toBe(1);
    // bounded: the oldest answers are forgotten, never wrong
    for (let i = 1; i < 10; i++) expect(m.next(t0 + i * 7_000)).toBe(s.next(t0 + i * 7_000));
    expect(calls).toBe(10);
    expect(m.next(t0)).toBe(s.next(t0));
    expect(calls).toBe(11);
    expect(m.prev(t0)).toBe(s.prev(t0));
    expect(memoNext(parseSchedule('R2/2026-12-01T02:00:00Z/P1D'), 2).next(ms('2026-12-02T02:00:00Z'))).toBeUndefined();
  });
});
