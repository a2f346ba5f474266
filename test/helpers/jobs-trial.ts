/**
 * The kill trials of per-second scheduled jobs (test/e2e/jobs-kill.test.ts on one host,
 * test/e2e/ha-jobs.test.ts across leaders on etcd): seeded moments, the executors a killed host
 * leaves, and the accounting of every slot of a job from its runs, its events, its counts and the
 * lines its runs' own processes wrote.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { JobView } from '../../src/control/jobs.js';
import { parseSchedule, slotsBetween } from '../../src/jobs/schedule.js';
import type { RunRecord } from '../../src/jobs/types.js';
import type { JobEvent } from './jobs-scratch.js';
import { mulberry32 } from '../../bench/rng.js';

const EVERY_SECOND = parseSchedule('* * * * * *');
const iso = (t: number) => new Date(t).toISOString();

/** random is a small seeded generator (mulberry32), so a failing trial can be told apart by its seed. */
export const random: (seed: number) => () => number = mulberry32;

/** childrenOf lists the processes whose parent is pid (a host's executor). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Outcome is what became of one slot, from one record or event. */
type Outcome = 'run' | 'run-missed' | 'missed' | 'skipped';

/** expand lists the per-second slots from..to, both included. */
const expand = (from: string, to: string) => slotsBetween(EVERY_SECOND, Date.parse(from) - 1, Date.parse(to)).slots.map(iso);

/**
 * outcomesOf maps each slot of a job to what its runs and events say became of it. A run recorded
 * missed after its claim (too late to start on a new host) is one outcome, `run-missed`.
 */
function outcomesOf(job: string, runs: RunRecord[], events: JobEvent[]): Map<string, Outcome[]> {
  const out = new Map<string, Outcome[]>();
  const add = (slot: string, o: Outcome) => out.set(slot, [...(out.get(slot) ?? []), o]);
  for (const r of runs) add(r.slot, r.state === 'missed' ? 'run-missed' : 'run');
  for (const e of events) {
    const kind = e.kind === 'job-slot-missed' ? 'missed' : e.kind === 'job-slot-skipped' ? 'skipped' : undefined;
    if (!kind) continue;
    if (e.run) {
      // the run's own record says it (state missed)
      expect(runs.find((r) => r.id === e.run)?.state, e.message).toBe('missed');
      continue;
    }
    const one = new RegExp(`^${job}: slot (\\S+) (missed|skipped): `).exec(e.message);
    const more = new RegExp(`^${job}: (\\d+) more slots (missed|skipped), (\\S+) to (\\S+)$`).exec(e.message);
    const range = new RegExp(`^${job}: (\\d+) slots missed from (\\S+) to before (\\S+): `).exec(e.message);
    if (one) add(one[1]!, kind);
    else if (more) {
      const slots = expand(more[3]!, more[4]!);
      expect(slots.length, e.message).toBe(Number(more[1]));
      for (const slot of slots) add(slot, kind);
    } else if (range) {
      const slots = expand(range[2]!, iso(Date.parse(range[3]!) - 1));
      expect(slots.length, e.message).toBe(Number(range[1]));
      for (const slot of slots) add(slot, kind);
    } else throw new Error(`an event of ${job} that names no slot: ${e.message}`);
  }
  return out;
}

/** JobTally is what the accounting of one job (or the sum of several) found. */
export interface JobTally {
  slots: number;
  runs: number;
  missed: number;
  skipped: number;
  /** runMissed are runs claimed and then recorded missed (too late to start on a new host). */
  runMissed: number;
  succeeded: number;
  failed: number;
  /** going are runs not ended when the trial stopped (they end by themselves). */
  going: number;
  adopted: number;
  /** ranButMissed are runs recorded missed whose process wrote its line all the same. */
  ranButMissed: number;
  /** ranTwice are the slots whose command ran more than once (a line written twice). */
  ranTwice: number;
}

/** emptyTally is a tally of nothing, to add jobs' tallies to. */
export function emptyTally(): JobTally {
  return { slots: 0, runs: 0, missed: 0, skipped: 0, runMissed: 0, succeeded: 0, failed: 0, going: 0, adopted: 0, ranButMissed: 0, ranTwice: 0 };
}

/** addTally adds b to a. */
export function addTally(a: JobTally, b: JobTally): JobTally {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof JobTally)[]) out[k] += b[k];
  return out;
}

/** JobUnderTrial is one per-second job at the end of a trial: its view, runs and events (every one kept), and its processes' lines. */
export interface JobUnderTrial {
  id: string;
  view: Pick<JobView, 'next' | 'counts'>;
  runs: RunRecord[];
  /** events are the job's events (job === id). */
  events: JobEvent[];
  /** lines are the run ids its runs' processes wrote, one line per start of a command. */
  lines: string[];
  /** createdAt is when its plan was applied: its slots start after it. */
  createdAt: number;
  /** why is said with every failure (the seed that repeats the trial). */
  why: string;
}

/**
 * accountJob checks one per-second job after a trial and returns its tally: every slot from its
 * creation to its cursor accounted for exactly once (a run kept, or a missed or skipped event), the
 * counts adding up to the same, each run scheduled once, and no slot run twice (each run id at most
 * once in its processes' lines, every line a recorded run, every run that succeeded in them).
 */
export function accountJob(j: JobUnderTrial): JobTally {
  const { id, view, runs, events, lines, why } = j;
  expect(events.some((e) => e.kind === 'job-created'), `${id}: its job-created event was dropped`).toBe(true);
  expect(view.next, `${id}: no next slot`).toBeDefined();
  // the slots after its creation up to its cursor (the cursor is before next, at or after the slot before it)
  const expected = slotsBetween(EVERY_SECOND, j.createdAt, Date.parse(view.next!) - 1, 100_000).slots.map(iso);

  // a run is recorded when it is claimed, with its event, and both agree
  const scheduled = events.filter((e) => e.kind === 'job-run-scheduled').map((e) => e.run!);
  expect(new Set(scheduled).size, `${id}: a run scheduled twice; ${why}`).toBe(scheduled.length);
  expect([...scheduled].sort(), `${id}: runs and job-run-scheduled events differ; ${why}`).toEqual(runs.map((r) => r.id).sort());

  const outcomes = outcomesOf(id, runs, events);
  const twice = [...outcomes].filter(([, o]) => o.length > 1).map(([slot, o]) => `${slot}: ${o.join(' + ')}`);
  expect(twice, `${id}: slots accounted for more than once; ${why}`).toEqual([]);
  expect([...outcomes.keys()].filter((slot) => !expected.includes(slot)), `${id}: outcomes outside its window; ${why}`).toEqual([]);
  expect(expected.filter((slot) => !outcomes.has(slot)), `${id}: slots not accounted for; ${why}`).toEqual([]);

  // the counts add up to the same
  const count = (o: Outcome) => [...outcomes.values()].filter((x) => x[0] === o).length;
  const c = view.counts;
  expect({ runs: c.runs, missed: c.missed, skipped: c.skipped }, `${id}: counts; ${why}`).toEqual({ runs: count('run'), missed: count('missed') + count('run-missed'), skipped: count('skipped') });
  expect(c.runs + c.missed + c.skipped).toBe(expected.length);
  expect(c.succeeded, id).toBe(runs.filter((r) => r.state === 'succeeded').length);
  expect(c.failed, id).toBe(runs.filter((r) => r.state === 'failed' || r.state === 'stopped').length);

  // no run ran twice: each run id at most once in the job's file; every run that succeeded ran
  const dup = lines.filter((l, i) => lines.indexOf(l) !== i);
  expect(dup, `${id}: runs that ran twice; ${why}`).toEqual([]);
  const ids = new Set(runs.map((r) => r.id));
  expect(lines.filter((l) => !ids.has(l)), `${id}: a process ran for no recorded run; ${why}`).toEqual([]);
  for (const r of runs.filter((x) => x.state === 'succeeded')) expect(lines.includes(r.id), `${r.id} succeeded but never ran`).toBe(true);

  return {
    slots: expected.length,
    runs: c.runs,
    missed: c.missed,
    skipped: c.skipped,
    runMissed: count('run-missed'),
    succeeded: c.succeeded,
    failed: c.failed,
    going: runs.filter((r) => r.state === 'running' || r.state === 'claimed' || r.state === 'waiting').length,
    adopted: events.filter((e) => e.kind === 'job-run-adopted').length,
    ranButMissed: runs.filter((r) => r.state === 'missed' && lines.includes(r.id)).length,
    ranTwice: dup.length,
  };
}
