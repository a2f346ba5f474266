/**
 * The job policy: which due slots of a job run, which are missed and which are skipped, given the
 * job's settings, the runs it still has going and the time. Pure (no clock, no I/O), so it is tested
 * in tables with a fake clock; src/jobs/runner.ts carries its decisions out.
 *
 * Rules, in order:
 * 1. Every slot in (cursor, now] is accounted for exactly once: run, missed or skipped. The cursor
 *    then moves to now (a window larger than the listing bound is counted and recorded as one
 *    missed range, never dropped in silence).
 * 2. A suspended job skips its slots.
 * 3. Slots that came due before this control host started (no host ran) follow `catchUp`: none →
 *    missed; latest → the newest runs, the others are missed; all → the newest `catchUpMax` run.
 * 4. Slots that came due while the host ran run; when several came due at once (the host stalled),
 *    only the newest runs unless catchUp is `all`: a slot never runs after its successor came due.
 * 5. A slot older than `startingDeadline` when it would start is missed, not run late.
 * 6. `concurrency`, against the job's runs still going and the slots chosen before it: allow runs
 *    both; forbid skips the new slot; replace stops the old runs and runs the new slot.
 */
import { countSlots, slotsBetween, type JobSchedule } from './schedule.js';

/** Concurrency says what a new slot does while a run of the same job still runs. */
export type Concurrency = 'allow' | 'forbid' | 'replace';

/** CatchUp says which slots missed while no control host ran still run. */
export type CatchUp = 'none' | 'latest' | 'all';

/** JobSettings are a job's scheduling settings, defaults applied (see src/spec for the YAML). */
export interface JobSettings {
  concurrency: Concurrency;
  /** startingDeadlineMs: a slot not started within it is missed (undefined: no deadline). */
  startingDeadlineMs?: number;
  catchUp: CatchUp;
  /** catchUpMax bounds how many missed slots `catchUp: all` runs. */
  catchUpMax: number;
  suspend: boolean;
}

/** ActiveRun is a run of the job that has not ended (claimed, running, or waiting for a retry). */
export interface ActiveRun {
  id: string;
  slot: number;
}

/** SlotDecisionInput is everything `decideSlots` needs. */
export interface SlotDecisionInput {
  schedule: JobSchedule;
  settings: JobSettings;
  /** suspended is the job's current suspension (the plan's `suspend`, or `factory jobs suspend`). */
  suspended: boolean;
  /** cursor: every slot at or before it is accounted for already. */
  cursor: number;
  now: number;
  /** hostStartedAt is when this control host began scheduling (earlier slots came due while none ran). */
  hostStartedAt: number;
  active: ActiveRun[];
  /** listLimit bounds the slots listed one by one (the rest are counted). */
  listLimit?: number;
}

/** MissedRange counts the slots of a window too large to list, all missed: from ≤ slot < until. */
export interface MissedRange {
  from: number;
  until: number;
  count: number;
  /** exact is false when counting stopped at its bound (then count is a lower bound). */
  exact: boolean;
}

/** SlotDecision is what to do with a job's due slots. */
export interface SlotDecision {
  /** run are the slots to claim and start, oldest first. */
  run: { slot: number; catchUp: boolean }[];
  missed: { slot: number; reason: string }[];
  missedRange?: MissedRange;
  skipped: { slot: number; reason: string }[];
  /** replace are the active runs to stop (concurrency: replace). */
  replace: string[];
  /** cursor is the new cursor (now). */
  cursor: number;
  /** next is the job's next slot after now, undefined when the schedule has ended. */
  next?: number;
}

/** DEFAULT_LIST_LIMIT bounds the due slots one decision lists one by one. */
export const DEFAULT_LIST_LIMIT = 1000;

/** decideSlots accounts for every due slot of one job (see the rules at the top of this file). */
export function decideSlots(input: SlotDecisionInput): SlotDecision {
  const { schedule, settings, now } = input;
  const out: SlotDecision = { run: [], missed: [], skipped: [], replace: [], cursor: Math.max(now, input.cursor) };
  if (now <= input.cursor) {
    out.next = schedule.next(input.cursor);
    return out;
  }
  const win = slotsBetween(schedule, input.cursor, now, input.listLimit ?? DEFAULT_LIST_LIMIT);
  out.next = win.more ? schedule.next(now) : win.nextAfter;
  let due = win.slots;
  if (win.more && due.length > 0) {
    // the window is larger than the bound: the oldest listed ones and the rest are one missed range,
    // and the decision goes on with the newest slot only (it may still catch up or run)
    const newest = schedule.prev(now) ?? due[due.length - 1]!;
    const rest = countSlots(schedule, due[due.length - 1]!, newest - 1);
    out.missedRange = { from: due[0]!, until: newest, count: due.length + rest.count, exact: rest.exact };
    due = [newest];
  }
  if (due.length === 0) return out;

  if (input.suspended || settings.suspend) {
    for (const slot of due) out.skipped.push({ slot, reason: 'the job is suspended' });
    return out;
  }

  const down = due.filter((s) => s < input.hostStartedAt);
  const live = due.filter((s) => s >= input.hostStartedAt);
  const candidates: { slot: number; catchUp: boolean }[] = [];
  // rule 3: slots that came due while no control host ran
  if (down.length > 0) {
    const keep = settings.catchUp === 'none' ? 0 : settings.catchUp === 'latest' ? 1 : settings.catchUpMax;
    const cut = Math.max(0, down.length - keep);
    for (const slot of down.slice(0, cut)) {
      out.missed.push({ slot, reason: settings.catchUp === 'none' ? 'no control host ran at the slot (catchUp: none)' : `no control host ran at the slot, beyond catchUp: ${settings.catchUp}${settings.catchUp === 'all' ? ` (at most ${settings.catchUpMax})` : ''}` });
    }
    for (const slot of down.slice(cut)) candidates.push({ slot, catchUp: true });
  }
  // rule 4: several live slots at once: the newest runs (unless catching up all)
  if (live.length > 0) {
    const keepAll = settings.catchUp === 'all';
    for (const [i, slot] of live.entries()) {
      if (keepAll || i === live.length - 1) candidates.push({ slot, catchUp: false });
      else out.missed.push({ slot, reason: 'a later slot came due before it could start' });
    }
  }
  // rule 5: the starting deadline
  const inTime = candidates.filter((c) => {
    if (settings.startingDeadlineMs === undefined || now - c.slot <= settings.startingDeadlineMs) return true;
    out.missed.push({ slot: c.slot, reason: `not started within its startingDeadline (${Math.round(settings.startingDeadlineMs / 1000)} s)` });
    return false;
  });
  // rule 6: concurrency
  const going = input.active.length > 0;
  if (settings.concurrency === 'allow') out.run.push(...inTime);
  else if (settings.concurrency === 'forbid') {
    for (const c of inTime) {
      if (going || out.run.length > 0) {
        const what = going ? `run ${input.active[0]!.id} is still running` : `slot ${new Date(out.run[0]!.slot).toISOString()} runs`;
        out.skipped.push({ slot: c.slot, reason: `concurrency: forbid, ${what}` });
      } else out.run.push(c);
    }
  } else {
    const last = inTime[inTime.length - 1];
    for (const c of inTime.slice(0, -1)) out.skipped.push({ slot: c.slot, reason: 'concurrency: replace, a later slot replaces it' });
    if (last) {
      out.run.push(last);
      out.replace.push(...input.active.map((a) => a.id));
    }
  }
  out.missed.sort((a, b) => a.slot - b.slot);
  return out;
}

/** ManualRunDecision is whether `factory jobs run` starts now, and what it stops. */
export type ManualRunDecision = { start: true; replace: string[] } | { start: false; reason: string };

/** decideManualRun applies `concurrency` to a run asked for by hand (`force` runs it regardless). */
export function decideManualRun(settings: Pick<JobSettings, 'concurrency'>, active: ActiveRun[], force: boolean): ManualRunDecision {
  if (force || active.length === 0 || settings.concurrency === 'allow') return { start: true, replace: [] };
  if (settings.concurrency === 'replace') return { start: true, replace: active.map((a) => a.id) };
  return { start: false, reason: `concurrency: forbid, run ${active[0]!.id} is still running (--force runs it anyway)` };
}

/**
 * afterTrigger is the slot of a dependent job (`after: [parents]`): the newest parent success when
 * every parent has succeeded since the job's cursor, else undefined (Chronos' parents).
 */
export function afterTrigger(parentSuccess: (number | undefined)[], cursor: number): number | undefined {
  if (parentSuccess.length === 0) return undefined;
  if (!parentSuccess.every((t) => t !== undefined && t > cursor)) return undefined;
  return Math.max(...(parentSuccess as number[]));
}

/** retryDelayMs is the wait before retry number `attempt` (1 = the first retry): backoff doubling, capped. */
export function retryDelayMs(backoffMs: number, attempt: number, capMs: number): number {
  return Math.min(capMs, backoffMs * 2 ** Math.max(0, attempt - 1));
}

/** EndedRun is a run that ended, for history pruning. */
export interface EndedRun {
  id: string;
  slot: number;
  succeeded: boolean;
}

/** pruneHistory names the ended runs beyond the job's history limits (the newest are kept). */
export function pruneHistory(runs: EndedRun[], limits: { succeeded: number; failed: number }): string[] {
  const sorted = [...runs].sort((a, b) => b.slot - a.slot);
  let ok = 0;
  let bad = 0;
  const drop: string[] = [];
  for (const r of sorted) {
    if (r.succeeded ? ++ok > limits.succeeded : ++bad > limits.failed) drop.push(r.id);
  }
  return drop;
}
