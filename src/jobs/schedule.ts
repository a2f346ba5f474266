/**
 * When a job's slots fall: a pure function of the schedule, its time zone, the last slot and now.
 *
 * Two kinds of schedule, as Chronos and cron took them:
 * - cron: 5 fields (minute precision), 6 with seconds first, or a macro (@hourly, @daily…), read by
 *   croner in the job's IANA zone;
 * - ISO 8601 repeating intervals `R[n]/<start>/<period>` (`R/2026-12-01T02:00:00Z/PT6H`,
 *   `R5/2026-12-01T02:00:00/P1D`): slot k is start + k × period, the period added in the job's zone
 *   (P1D keeps the wall-clock time across a DST change, PT24H does not); at most n slots when n is given.
 *
 * Daylight saving time, for both kinds: a wall-clock time a schedule names that does not exist
 * (spring forward) runs once, at the end of the gap; a wall-clock time that occurs twice (fall back)
 * runs once, at its first occurrence. Schedules that step through the hours (`*\/15 * * * *`,
 * `0 * * * *`, PT6H) keep their elapsed-time rhythm instead: they run in both passes of a repeated
 * hour and skip the times of a gap, so "every 15 minutes" stays every 15 minutes of real time.
 *
 * Times are epoch milliseconds; a slot is identified by its ISO string in UTC (`slotId`).
 */
import { createRequire } from 'node:module';
import { Cron } from 'croner';
import type { DateTime } from 'luxon';

let luxonModule: typeof import('luxon') | undefined;
/** luxon is loaded on the first ISO 8601 schedule: every command reads plans, few use those (it costs ~15 ms to load). */
function luxon(): typeof import('luxon') {
  luxonModule ??= createRequire(import.meta.url)('luxon') as typeof import('luxon');
  return luxonModule;
}

/** ScheduleError is a schedule or zone that cannot be read; the message says what is wrong. */
export class ScheduleError extends Error {}

/** CRON_MACROS are the @-names a cron schedule may use. */
export const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] as const;

/** JobSchedule is a parsed schedule: `next(after)` is the first slot strictly after `after`. */
export interface JobSchedule {
  readonly kind: 'cron' | 'iso';
  readonly text: string;
  readonly zone: string;
  /** next is the first slot time strictly after `after`, or undefined when the schedule has ended. */
  next(after: number): number | undefined;
  /** prev is the newest slot at or before `atOrBefore`, or undefined when there is none. */
  prev(atOrBefore: number): number | undefined;
}

/** checkZone throws ScheduleError unless `zone` is an IANA time zone this Node knows. */
export function checkZone(zone: string): void {
  let ok = true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    ok = false;
  }
  if (!ok || zone.trim() === '') {
    throw new ScheduleError(`unknown time zone '${zone}' (expected an IANA name such as UTC or Europe/Berlin)`);
  }
}

/** parseSchedule reads a cron expression, a macro or an ISO 8601 repeating interval in `zone` (default UTC). */
export function parseSchedule(text: string, zone = 'UTC'): JobSchedule {
  checkZone(zone);
  const t = text.trim();
  if (/^R\d*\//.test(t)) return isoSchedule(t, zone);
  return cronSchedule(t, zone);
}

function cronSchedule(t: string, zone: string): JobSchedule {
  if (t.startsWith('@')) {
    if (!(CRON_MACROS as readonly string[]).includes(t)) {
      throw new ScheduleError(`unknown schedule macro '${t}' (expected one of ${CRON_MACROS.join(', ')})`);
    }
  } else {
    const n = t.split(/\s+/).length;
    if (n !== 5 && n !== 6) {
      throw new ScheduleError(`invalid schedule '${t}': ${n} field(s); expected 5 cron fields ("0 2 * * *"), 6 with seconds first, a macro (@daily) or an ISO 8601 interval (R/2026-12-01T02:00:00Z/PT6H)`);
    }
  }
  let cron: Cron;
  try {
    cron = new Cron(t, { timezone: zone, paused: true, fixedTimeRule: 'no-wildcard' });
  } catch (err) {
    throw new ScheduleError(`invalid schedule '${t}': ${(err as Error).message.replace(/^CronPattern: /, '')}`);
  }
  return {
    kind: 'cron',
    text: t,
    zone,
    next(after) {
      const d = cron.nextRun(new Date(after));
      return d ? d.getTime() : undefined;
    },
    prev(atOrBefore) {
      const [d] = cron.previousRuns(1, new Date(atOrBefore + 1));
      return d ? d.getTime() : undefined;
    },
  };
}

const CALENDAR_UNITS = ['years', 'quarters', 'months', 'weeks', 'days'] as const;

function isoSchedule(t: string, zone: string): JobSchedule {
  const { DateTime, Duration } = luxon();
  const parts = t.split('/');
  if (parts.length !== 3) throw new ScheduleError(`invalid ISO 8601 interval '${t}' (expected R[n]/<start>/<period>, e.g. R/2026-12-01T02:00:00Z/PT6H)`);
  const [r, startText, periodText] = parts as [string, string, string];
  const repeat = r.length > 1 ? Number(r.slice(1)) : undefined;
  const start = DateTime.fromISO(startText, { zone, setZone: true });
  if (!start.isValid) throw new ScheduleError(`invalid start '${startText}' in '${t}': ${start.invalidExplanation ?? start.invalidReason}`);
  const period = Duration.fromISO(periodText);
  if (!period.isValid) throw new ScheduleError(`invalid period '${periodText}' in '${t}': ${period.invalidExplanation ?? period.invalidReason}`);
  const approx = period.as('milliseconds');
  if (approx === 0) throw new ScheduleError(`invalid period '${periodText}' in '${t}': it is zero`);
  if (!(approx >= 1000)) throw new ScheduleError(`period '${periodText}' in '${t}' is shorter than one second`);
  const calendar = CALENDAR_UNITS.some((u) => period.get(u) !== 0);
  // the start is read in the job's zone unless it carries its own offset; slots follow the job's zone
  const origin = start.setZone(zone);
  // calendar periods are added to the wall clock (naive local time), then placed in the zone
  const naive = origin.setZone('UTC', { keepLocalTime: true });
  const slotAt = (k: number): number => {
    if (!calendar) return origin.plus(period.mapUnits((x) => x * k)).toMillis();
    return placeWallTime(naive.plus(period.mapUnits((x) => x * k)), zone);
  };
  return {
    kind: 'iso',
    text: t,
    zone,
    next(after) {
      // estimate the index from the period's nominal length, then step to the exact one
      let k = Math.max(0, Math.floor((after - origin.toMillis()) / approx) - 2);
      for (let i = 0; i < 10_000; i++, k++) {
        if (repeat !== undefined && k >= repeat) return undefined;
        const s = slotAt(k);
        if (s > after) return s;
      }
      throw new ScheduleError(`schedule '${t}': no slot found after ${new Date(after).toISOString()}`);
    },
    prev(atOrBefore) {
      if (atOrBefore < origin.toMillis()) return undefined;
      let k = Math.floor((atOrBefore - origin.toMillis()) / approx) + 2;
      if (repeat !== undefined) k = Math.min(k, repeat - 1);
      for (let i = 0; i < 10_000 && k >= 0; i++, k--) {
        const s = slotAt(k);
        if (s <= atOrBefore) return s;
      }
      return undefined;
    },
  };
}

/**
 * placeWallTime is the instant of a wall-clock time (given as UTC fields) in `zone`: the first of two
 * when it occurs twice, and the end of the gap when it does not exist (luxon would move it forward by
 * the gap's length: 02:30 → 03:30; the slot runs at 03:00 instead, as cron's fixed-time jobs do).
 */
function placeWallTime(wall: DateTime, zone: string): number {
  const { DateTime } = luxon();
  const d = DateTime.fromObject(wall.toObject(), { zone });
  const same = (x: DateTime) => x.hour === wall.hour && x.minute === wall.minute && x.second === wall.second && x.day === wall.day;
  if (same(d)) {
    // a time that occurs twice: the first occurrence (DST shifts are 30, 60 or 120 minutes)
    for (const back of [120, 60, 30]) {
      const e = DateTime.fromMillis(d.toMillis() - back * 60_000, { zone });
      if (same(e)) return e.toMillis();
    }
    return d.toMillis();
  }
  // in a gap: the transition is the first instant whose wall clock is at or past the wanted one
  const wanted = wall.toMillis();
  const localOf = (ms: number) => DateTime.fromMillis(ms, { zone }).setZone('UTC', { keepLocalTime: true }).toMillis();
  let lo = d.toMillis() - 4 * 3600_000;
  let hi = d.toMillis();
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2);
    if (localOf(mid) >= wanted) hi = mid;
    else lo = mid;
  }
  return Math.floor(hi / 1000) * 1000; // transitions fall on whole seconds
}

/**
 * memoNext wraps a schedule so that next(after) asked again with the same `after` is answered from
 * memory (the last `size` answers). Jobs that share a schedule and a cursor (a thousand jobs applied
 * together on `0 * * * *`) then cost one croner call per pass instead of one each: croner takes
 * 25-100 µs per call (more in a zone), two per due job. The schedule is pure, so a remembered answer
 * is the answer.
 */
export function memoNext(s: JobSchedule, size = 256): JobSchedule {
  const memo = new Map<number, number | undefined>();
  return {
    kind: s.kind,
    text: s.text,
    zone: s.zone,
    next(after) {
      if (memo.has(after)) return memo.get(after);
      const t = s.next(after);
      if (memo.size >= size) memo.delete(memo.keys().next().value!);
      memo.set(after, t);
      return t;
    },
    prev: (atOrBefore) => s.prev(atOrBefore),
  };
}

/** slotId is a slot's identity in a run id: its UTC ISO time (milliseconds always shown). */
export function slotId(ms: number): string {
  return new Date(ms).toISOString();
}

/** SlotsBetween is the result of `slotsBetween`: slots in order, and whether the limit cut the list. */
export interface SlotsBetween {
  slots: number[];
  /** more is set when more slots than `limit` fell in the window (the caller counts the rest). */
  more: boolean;
  /** nextAfter is the first slot after `until` (undefined when the schedule has ended). */
  nextAfter?: number;
}

/** slotsBetween lists the slots s with after < s ≤ until, at most `limit` of them (the oldest). */
export function slotsBetween(s: JobSchedule, after: number, until: number, limit = 10_000): SlotsBetween {
  const slots: number[] = [];
  let t = s.next(after);
  while (t !== undefined && t <= until) {
    if (slots.length >= limit) return { slots, more: true, nextAfter: undefined };
    slots.push(t);
    t = s.next(t);
  }
  return { slots, more: false, nextAfter: t };
}

/** countSlots counts the slots s with after < s ≤ until without keeping them (bounded by `max` steps). */
export function countSlots(s: JobSchedule, after: number, until: number, max = 20_000): { count: number; exact: boolean } {
  let n = 0;
  let t = s.next(after);
  while (t !== undefined && t <= until) {
    if (++n >= max) return { count: n, exact: false };
    t = s.next(t);
  }
  return { count: n, exact: true };
}
