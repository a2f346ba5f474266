/**
 * The kill -9 trial of scheduled jobs: 20 per-second jobs run by the built CLI's control host, which
 * is killed with SIGKILL at random moments and started again each time (the killed host's executor
 * may leave tasks running: they are adopted or recorded). At the end: no slot ran twice (each run
 * writes its id to its job's file), and every slot of each job from its creation to its final cursor
 * is accounted for exactly once, as a run kept or in the events (missed, skipped), with the job's
 * counts adding up. Everything is read through the CLI.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import type { JobView } from '../../src/control/jobs.js';
import { parseSchedule, slotsBetween } from '../../src/jobs/schedule.js';
import type { RunRecord } from '../../src/jobs/types.js';
import { pidAlive, waitFor } from '../helpers/cli.js';
import { JobsScratch, type JobEvent } from '../helpers/jobs-scratch.js';

const JOBS = 20;
const EVERY_SECOND = parseSchedule('* * * * * *');
const iso = (t: number) => new Date(t).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** random is a small seeded generator (mulberry32), so a failing trial can be told apart by its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** childrenOf lists the processes whose parent is pid (a host's executor). */
function childrenOf(pid: number): number[] {
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

test('kill -9 of the control host at random moments during 20 per-second jobs: no slot runs twice, every slot is accounted for once', async () => {
  const seed = Number(process.env.JOBS_KILL_SEED ?? Date.now() % 1_000_000);
  const rand = random(seed);
  const why = `seed ${seed} (JOBS_KILL_SEED=${seed} repeats the moments)`;
  // every event kept, every run kept: the accounting reads them all
  const s = new JobsScratch('factory-jobs-kill-', { FACTORY_EVENTS_PER_SUBJECT: '100000', FACTORY_EVENTS_MAX: '1000000' });
  const executors = new Set<number>();
  try {
    mkdirSync(s.file('out'));
    const names = Array.from({ length: JOBS }, (_, i) => `j${String(i).padStart(2, '0')}`);
    // each run writes its id, then sleeps 0 to 1.5 s (from its pid)
    const jobYaml = (name: string) => `  - name: ${name}
    schedule: "* * * * * *"
    command: ${JSON.stringify(['sh', '-c', `echo "$FACTORY_RUN" >> ${s.file(`out/${name}`)}; n=$(( $$ % 16 )); sleep $((n / 10)).$((n % 10))`])}
    resources: {cpus: 0.01, mem: 16Mi}
    history: {succeeded: 1000, failed: 1000}
`;
    await s.apply(`name: storm\njobs:\n${names.map(jobYaml).join('')}`);

    const kills = 3 + Math.floor(rand() * 2);
    for (let k = 0; k < kills; k++) {
      const host = await s.startHost();
      await sleep(3000 + rand() * 3000);
      for (const pid of childrenOf(host.pid)) executors.add(pid);
      process.kill(host.pid, 'SIGKILL');
      expect(await waitFor(() => !pidAlive(host.pid), 5000, 20), `host ${host.pid} survived SIGKILL`).toBe(true);
      await sleep(rand() * 1000);
    }
    await s.startHost();
    await sleep(3000);
    await s.stopHost();
    // the runs still going end by themselves (1.5 s at most); their files are then complete
    await sleep(1600);

    const [jobs, events] = await Promise.all([s.jobs(), s.events()]);
    const history = new Map<string, RunRecord[]>();
    for (let i = 0; i < names.length; i += 5) {
      const batch = names.slice(i, i + 5);
      const got = await Promise.all(batch.map((n) => s.runs(`storm/${n}`)));
      batch.forEach((n, j) => history.set(n, got[j]!));
    }
    // nothing was dropped by the events' retention: each job's creation is still there
    const applied = events.filter((e) => e.kind === 'plan-applied');
    expect(applied.length).toBe(1);
    const createdAt = Date.parse(applied[0]!.at);

    const totals = { slots: 0, runs: 0, missed: 0, skipped: 0, runMissed: 0, succeeded: 0, failed: 0, going: 0, adopted: 0, ranButMissed: 0 };
    for (const name of names) {
      const id = `storm/${name}`;
      const view: JobView = jobs.find((j) => j.id === id)!;
      const runs = history.get(name)!;
      const mine = events.filter((e) => e.job === id);
      expect(mine.some((e) => e.kind === 'job-created'), `${id}: its job-created event was dropped`).toBe(true);
      expect(view.next, `${id}: no next slot`).toBeDefined();
      // the slots after its creation up to its cursor (the cursor is before next, at or after the slot before it)
      const expected = slotsBetween(EVERY_SECOND, createdAt, Date.parse(view.next!) - 1, 100_000).slots.map(iso);

      // a run is recorded when it is claimed, with its event, and both agree
      const scheduled = mine.filter((e) => e.kind === 'job-run-scheduled').map((e) => e.run!);
      expect(new Set(scheduled).size, `${id}: a run scheduled twice; ${why}`).toBe(scheduled.length);
      expect([...scheduled].sort(), `${id}: runs and job-run-scheduled events differ; ${why}`).toEqual(runs.map((r) => r.id).sort());

      const outcomes = outcomesOf(id, runs, mine);
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
      const lines = s.lines(`out/${name}`);
      const dup = lines.filter((l, i) => lines.indexOf(l) !== i);
      expect(dup, `${id}: runs that ran twice; ${why}`).toEqual([]);
      const ids = new Set(runs.map((r) => r.id));
      expect(lines.filter((l) => !ids.has(l)), `${id}: a process ran for no recorded run; ${why}`).toEqual([]);
      for (const r of runs.filter((x) => x.state === 'succeeded')) expect(lines.includes(r.id), `${r.id} succeeded but never ran`).toBe(true);

      totals.slots += expected.length;
      totals.runs += c.runs;
      totals.missed += c.missed;
      totals.skipped += c.skipped;
      totals.runMissed += count('run-missed');
      totals.succeeded += c.succeeded;
      totals.failed += c.failed;
      totals.going += runs.filter((r) => r.state === 'running' || r.state === 'claimed' || r.state === 'waiting').length;
      totals.adopted += mine.filter((e) => e.kind === 'job-run-adopted').length;
      totals.ranButMissed += runs.filter((r) => r.state === 'missed' && lines.includes(r.id)).length;
    }
    console.info(`jobs kill -9 trial, ${why}: ${kills} kills; ${JSON.stringify(totals)}`);
    expect(totals.runs).toBeGreaterThan(0);
    expect(totals.missed).toBeGreaterThan(0); // each restart misses the slots while no host ran
  } finally {
    await s.close();
    for (const pid of executors) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}, 120_000);
