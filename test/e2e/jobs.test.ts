/**
 * Scheduled jobs end to end: the built CLI's control host (`factory control serve`) runs the jobs of
 * an applied plan as real processes on the embedded local agent, and everything is read back through
 * the CLI (`jobs list|history --json`, the event stream) or the host's API. Each test has its own
 * state, plan and host. Asserts are on slots and accounting (ids, counts), never on exact
 * milliseconds; the first slot after the host starts may be missed (slots due before it started are
 * missed by design). Here: a slot each second, concurrency, retries; test/e2e/jobs-commands.test.ts
 * has `after`, history and the commands.
 */
import { existsSync } from 'node:fs';
import { expect, test } from 'vitest';
import { parseSchedule, slotsBetween } from '../../src/jobs/schedule.js';
import type { RunRecord } from '../../src/jobs/types.js';
import { pidAlive, waitFor } from '../helpers/cli.js';
import { JOB_TEST_MS, scratchPerTest, secondsFrom } from '../helpers/jobs-scratch.js';

const setup = scratchPerTest();

test('a job of every second runs each slot from its first run to its last exactly once, as one process each', async () => {
  const s = setup('factory-jobs-tick-');
  await s.apply(`name: ticks
jobs:
  - name: tick
    schedule: "* * * * * *"
    command: ["sh", "-c", "echo \\"$FACTORY_SLOT\\" >> ${s.file('slots')}"]
    resources: {cpus: 0.01, mem: 16Mi}
    history: {succeeded: 100, failed: 100}
`);
  await s.startHost();
  expect(await waitFor(async () => (await s.liveRuns('ticks/tick')).filter((r) => r.state === 'succeeded').length >= 10, 20_000, 200)).toBe(true);
  // suspend ends the window: no run starts after it, the slots that follow are skipped
  const suspended = await s.json<{ job: { suspended: boolean } }>(['jobs', 'suspend', 'tick']);
  expect(suspended.job.suspended).toBe(true);
  expect(await waitFor(async () => (await s.liveJob('ticks/tick')).running === 0, 5000, 100)).toBe(true);
  await s.stopHost();

  const [runs, allEvents, view] = await Promise.all([s.runs('tick'), s.events(), s.job('ticks/tick')]);
  const slots = runs.map((r) => r.slot);
  expect(runs.length).toBeGreaterThanOrEqual(10);
  // every second from the first run to the last, each once (the ids are unique, the slots contiguous)
  expect(slots).toEqual(secondsFrom(slots[0]!, slots.at(-1)!));
  expect(new Set(runs.map((r) => r.id)).size).toBe(runs.length);
  for (const r of runs) {
    expect(r, r.id).toMatchObject({ id: `ticks/tick/${r.slot}`, state: 'succeeded', exitCode: 0, trigger: 'schedule', attempt: 1, agent: 'local' });
  }
  // one process per run: a pid each, and each slot written to the file once
  expect(new Set(runs.map((r) => r.pid)).size).toBe(runs.length);
  const lines = s.lines('slots');
  expect(lines.length).toBe(runs.length);
  expect([...lines].sort()).toEqual(slots);

  // the slots not run: missed before the first run (before the host started), skipped after the suspension
  const events = allEvents.filter((e) => e.job === 'ticks/tick');
  const missed = events.filter((e) => e.kind === 'job-slot-missed');
  const skipped = events.filter((e) => e.kind === 'job-slot-skipped');
  for (const e of missed) expect(e.slot! < slots[0]!, e.message).toBe(true);
  for (const e of skipped) {
    expect(e.slot! > slots.at(-1)!, e.message).toBe(true);
    expect(e.message).toMatch(/skipped: the job is suspended$/);
  }
  expect(events.filter((e) => e.kind === 'job-run-scheduled').map((e) => e.slot)).toEqual(slots);
  expect(view.counts).toEqual({ runs: runs.length, succeeded: runs.length, failed: 0, missed: missed.length, skipped: skipped.length });
  expect(view.lastRun).toMatchObject({ id: runs.at(-1)!.id, state: 'succeeded', exitCode: 0 });
}, JOB_TEST_MS);

test('concurrency: forbid skips the slots while its run runs; replace stops the old run (and its process) for the new one', async () => {
  const s = setup('factory-jobs-conc-');
  await s.apply(`name: conc
jobs:
  - name: forbid
    schedule: "* * * * * *"
    concurrency: forbid
    command: ["sleep", "2.5"]
    resources: {cpus: 0.01, mem: 16Mi}
  - name: replace
    schedule: "*/2 * * * * *"
    concurrency: replace
    command: ["sleep", "60"]
    stopGrace: 1s
    resources: {cpus: 0.01, mem: 16Mi}
`);
  await s.startHost();
  // forbid's second run means its first ended (the slots between skipped); replace's third, two replaced
  const enough = async () => (await s.liveRuns('conc/forbid')).length >= 2 && (await s.liveRuns('conc/replace')).length >= 3;
  expect(await waitFor(enough, 20_000, 200)).toBe(true);
  // suspended, the runs going end (forbid) or stay the newest (replace); then the state holds still
  await Promise.all([s.json(['jobs', 'suspend', 'conc/forbid']), s.json(['jobs', 'suspend', 'conc/replace'])]);
  expect(await waitFor(async () => (await s.liveJob('conc/forbid')).running === 0 && (await s.liveJob('conc/replace')).running === 1, 8000, 100)).toBe(true);
  await s.stopHost();
  const [events, forbid, replace] = await Promise.all([s.events(), s.runs('conc/forbid'), s.runs('conc/replace')]);

  // forbid: one run at a time (each starts after the one before ended), the slots between skipped
  for (const r of forbid) expect(r, r.id).toMatchObject({ state: 'succeeded', exitCode: 0 });
  for (const [i, r] of forbid.entries()) if (i > 0) expect(Date.parse(r.startedAt!) >= Date.parse(forbid[i - 1]!.finishedAt!), `${r.id} started before ${forbid[i - 1]!.id} ended`).toBe(true);
  const skipped = events.filter((e) => e.job === 'conc/forbid' && e.kind === 'job-slot-skipped' && !/suspended$/.test(e.message));
  expect(skipped.length).toBeGreaterThanOrEqual(2);
  for (const e of skipped) {
    const busy = /skipped: concurrency: forbid, run (\S+) is still running$/.exec(e.message)?.[1];
    expect(busy, e.message).toBeDefined();
    // the run named is the job's last run before the slot, which had not ended when the slot came
    const before = forbid.filter((r) => r.slot < e.slot!).at(-1);
    expect(busy).toBe(before?.id);
  }
  // from its first run, every slot up to the suspension is a run or skipped, never both, never missed
  const firstRun = forbid[0]!.slot;
  const accounted = [...forbid.map((r) => r.slot), ...skipped.map((e) => e.slot!)].sort();
  expect(accounted).toEqual(secondsFrom(firstRun, accounted.at(-1)!));
  expect(events.filter((e) => e.job === 'conc/forbid' && e.kind === 'job-slot-missed' && e.slot! > firstRun)).toEqual([]);

  // replace: each run but the newest was stopped when the next one came, its process gone
  const newest = replace.at(-1)!;
  expect(newest.state).toBe('running');
  for (const [i, r] of replace.slice(0, -1).entries()) {
    expect(r, r.id).toMatchObject({ state: 'stopped', reason: `replaced by the run of ${replace[i + 1]!.slot}` });
    expect(r.pid, r.id).toBeGreaterThan(0);
    expect(existsSync(`/proc/${r.pid}`) && pidAlive(r.pid!), `${r.id}: its process ${r.pid} is still there`).toBe(false);
    expect(events.some((e) => e.kind === 'job-run-stopped' && e.run === r.id)).toBe(true);
  }
  expect(pidAlive(newest.pid!)).toBe(true);
  const everyOther = slotsBetween(parseSchedule('*/2 * * * * *'), Date.parse(replace[0]!.slot) - 1, Date.parse(newest.slot)).slots.map((t) => new Date(t).toISOString());
  expect(replace.map((r) => r.slot)).toEqual(everyOther);
}, JOB_TEST_MS);

test('a failing job retries with backoff (1 s, then 2 s) and ends failed after its retries, with its exit code', async () => {
  const s = setup('factory-jobs-retry-');
  await s.apply(`name: retry
jobs:
  - name: flaky
    schedule: "@yearly"
    command: ["sh", "-c", "echo attempt $FACTORY_ATTEMPT; exit 3"]
    retries: 2
    backoff: 1s
    resources: {cpus: 0.01, mem: 16Mi}
`);
  await s.startHost();
  const { run } = await s.json<{ run: RunRecord }>(['jobs', 'run', 'retry/flaky']);
  expect(run).toMatchObject({ job: 'retry/flaky', trigger: 'manual', attempt: 1, agent: 'local' });
  expect(await waitFor(async () => (await s.liveRuns('retry/flaky'))[0]?.state === 'failed', 15_000, 100)).toBe(true);
  const [[done, ...others], allEvents, view, human, logs] = await Promise.all([
    s.runs('retry/flaky'),
    s.events(),
    s.job('retry/flaky'),
    s.cli(['jobs', 'history', 'flaky']),
    s.cli(['jobs', 'logs', run.id]),
  ]);
  expect(others).toEqual([]);
  expect(done).toMatchObject({ id: run.id, state: 'failed', exitCode: 3, reason: 'exit code 3', attempt: 3 });
  expect(done!.attempts.map((a) => [a.attempt, a.exitCode, a.reason])).toEqual([
    [1, 3, 'exit code 3'],
    [2, 3, 'exit code 3'],
  ]);
  // each attempt its own task; the waits between attempt starts at least the backoff (1 s, doubled)
  expect(new Set([...done!.attempts.map((a) => a.task), done!.task]).size).toBe(3);
  const starts = [...done!.attempts.map((a) => a.startedAt!), done!.startedAt!].map((t) => Date.parse(t));
  expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(1000);
  expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(2000);

  const events = allEvents.filter((e) => e.run === run.id);
  expect(events.filter((e) => e.kind === 'job-run-retried').map((e) => e.message)).toEqual([
    `${run.id}: attempt 1 failed (exit code 3); retry 1 of 2 in 1 s`,
    `${run.id}: attempt 2 failed (exit code 3); retry 2 of 2 in 2 s`,
  ]);
  expect(events.filter((e) => e.kind === 'job-run-failed').map((e) => e.message)).toEqual([`${run.id}: failed: exit code 3 after 3 attempts`]);
  expect(events.filter((e) => e.kind === 'job-run-succeeded')).toEqual([]);
  expect(view.counts).toEqual({ runs: 1, succeeded: 0, failed: 1, missed: 0, skipped: 0 });
  // the human history says it too; the run's output is its last attempt's
  expect(human.code, human.stderr).toBe(0);
  expect(human.stdout).toMatch(new RegExp(`${done!.slot}\\s+manual\\s+failed\\s+3\\s+local\\s.*\\s3\\s+exit code 3`));
  expect(logs.stdout).toBe('attempt 3\n');
}, JOB_TEST_MS);
