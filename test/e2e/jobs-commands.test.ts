/**
 * Scheduled jobs end to end, continued (see test/e2e/jobs.test.ts): `after` dependencies, history
 * limits with their task folders, and the `factory jobs` commands (run, suspend, resume, logs, errors,
 * --json) against the built CLI's control host and real processes. Each test has its own state, plan
 * and host.
 */
import { writeFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import type { JobView } from '../../src/control/jobs.js';
import { RUN_ENDED, type RunRecord } from '../../src/jobs/types.js';
import { waitFor } from '../helpers/cli.js';
import { JOB_TEST_MS, scratchPerTest } from '../helpers/jobs-scratch.js';

const setup = scratchPerTest();

test('after: [a, b] runs the child only once both parents succeeded, and once', async () => {
  const s = setup('factory-jobs-after-');
  // tick runs every second: each of its runs scheduled is a pass of the host's scheduler, which
  // looks at the child's parents in the same pass
  await s.apply(`name: deps
jobs:
  - name: a
    schedule: "@yearly"
    command: ["true"]
    resources: {cpus: 0.01, mem: 16Mi}
  - name: b
    schedule: "@yearly"
    command: ["true"]
    resources: {cpus: 0.01, mem: 16Mi}
  - name: child
    after: [a, b]
    command: ["sh", "-c", "echo \\"$FACTORY_RUN\\" >> ${s.file('child')}"]
    resources: {cpus: 0.01, mem: 16Mi}
  - name: tick
    schedule: "* * * * * *"
    command: ["true"]
    history: {succeeded: 1, failed: 1}
    resources: {cpus: 0.01, mem: 16Mi}
`);
  await s.startHost();
  /** succeeded waits for a run's success (its failure fails at once). */
  const succeeded = (run: string) =>
    s.until(`${run} to succeed`, (e) => e.run === run && e.kind === 'job-run-succeeded', (e) => e.run === run && (e.kind === 'job-run-failed' || e.kind === 'job-run-stopped'));
  /** twoPassesAfter waits for two runs of tick scheduled after rev: the second one's pass began after the first one's claim, so after rev. */
  const twoPassesAfter = async (rev: number, what: string) => {
    const first = await s.until(`a pass of the scheduler after ${what}`, (e) => e.job === 'deps/tick' && e.kind === 'job-run-scheduled' && e.rev > rev);
    await s.until(`a second pass of the scheduler after ${what}`, (e) => e.job === 'deps/tick' && e.kind === 'job-run-scheduled' && e.rev > first.rev);
  };
  const childScheduled = () => s.received((e) => e.job === 'deps/child' && e.kind === 'job-run-scheduled');

  const { run: runA } = await s.json<{ run: RunRecord }>(['jobs', 'run', 'deps/a']);
  const aOk = await succeeded(runA.id);
  // a alone: the scheduler passes and the child does not run
  await twoPassesAfter(aOk.rev, "a's success");
  expect(childScheduled()).toEqual([]);
  expect(await s.liveRuns('deps/child')).toEqual([]);
  const { run: runB } = await s.json<{ run: RunRecord }>(['jobs', 'run', 'deps/b']);
  const bOk = await succeeded(runB.id);
  const scheduled = await s.until('a run of the child', (e) => e.job === 'deps/child' && e.kind === 'job-run-scheduled');
  const childOk = await succeeded(scheduled.run!);
  // only after both parents succeeded
  expect(scheduled.rev).toBeGreaterThan(bOk.rev);
  // and only once: nothing more comes without new successes of both
  await twoPassesAfter(childOk.rev, "the child's success");
  expect(childScheduled()).toHaveLength(1);
  const [[child, ...more], [a], [b], view] = await Promise.all([s.runs('deps/child'), s.runs('deps/a'), s.runs('deps/b'), s.job('deps/child')]);
  expect(more).toEqual([]);
  expect([a, b]).toMatchObject([{ id: runA.id, state: 'succeeded' }, { id: runB.id, state: 'succeeded' }]);
  // its slot is the newest parent success (b's), after a's
  expect(child).toMatchObject({ id: scheduled.run, trigger: 'after', state: 'succeeded', exitCode: 0 });
  expect(Date.parse(child!.slot)).toBe(Date.parse(b!.finishedAt!));
  expect(Date.parse(child!.slot)).toBeGreaterThan(Date.parse(a!.finishedAt!));
  expect(s.lines('child')).toEqual([child!.id]);
  expect(view.counts).toMatchObject({ runs: 1, succeeded: 1 });
}, JOB_TEST_MS);

test('history keeps exactly its limits (the newest), and the task folders of the runs it drops are removed', async () => {
  const s = setup('factory-jobs-hist-');
  // odd seconds fail, even ones succeed
  await s.apply(`name: hist
jobs:
  - name: flip
    schedule: "* * * * * *"
    command: ["sh", "-c", "case $FACTORY_SLOT in *[13579].000Z) exit 1;; esac"]
    history: {succeeded: 2, failed: 1}
    resources: {cpus: 0.01, mem: 16Mi}
`);
  await s.startHost();
  // one more of each than kept: both limits have dropped a run
  await s.untilCount('3 successes of hist/flip', 3, (e) => e.job === 'hist/flip' && e.kind === 'job-run-succeeded');
  await s.untilCount('2 failures of hist/flip', 2, (e) => e.job === 'hist/flip' && e.kind === 'job-run-failed');
  await s.json(['jobs', 'suspend', 'flip']);
  // the runs still going after the suspension end by themselves (it schedules nothing more)
  for (let going = await s.liveRuns('hist/flip'); going.some((r) => !RUN_ENDED.includes(r.state)); going = await s.liveRuns('hist/flip')) {
    for (const r of going.filter((x) => !RUN_ENDED.includes(x.state))) await s.runEnded(r.id);
  }
  expect((await s.liveJob('hist/flip')).running).toBe(0);
  const kept = await s.runs('hist/flip');
  const tasks = kept.map((r) => r.task!.replaceAll('/', '.')).sort();
  // the folders of dropped runs are removed in the background: wait until only the kept runs' remain
  const folders = () => s.taskFolders().map((f) => f.replace(/_[0-9a-f]{8}$/, ''));
  await waitFor(() => JSON.stringify(folders()) === JSON.stringify(tasks), s.timeLeft(), 100);
  await s.stopHost();

  const [allEvents, view] = await Promise.all([s.events(), s.job('hist/flip')]);
  const ended = allEvents.filter((e) => e.job === 'hist/flip' && (e.kind === 'job-run-succeeded' || e.kind === 'job-run-failed'));
  const ok = ended.filter((e) => e.kind === 'job-run-succeeded').map((e) => e.slot!).sort();
  const bad = ended.filter((e) => e.kind === 'job-run-failed').map((e) => e.slot!).sort();
  expect(ok.length).toBeGreaterThanOrEqual(3);
  expect(bad.length).toBeGreaterThanOrEqual(2);
  // exactly the limits: the two newest successes and the newest failure
  expect(kept.filter((r) => r.state === 'succeeded').map((r) => r.slot)).toEqual(ok.slice(-2));
  expect(kept.filter((r) => r.state === 'failed').map((r) => r.slot)).toEqual(bad.slice(-1));
  expect(kept.length).toBe(3);
  for (const r of kept) expect(r.exitCode, r.id).toBe(r.state === 'succeeded' ? 0 : 1);
  expect(view.counts).toMatchObject({ succeeded: ok.length, failed: bad.length });
  // on the agent, only the kept runs' task folders are left
  expect(folders()).toEqual(tasks);
}, JOB_TEST_MS);

test('jobs run (--force over forbid), suspend and resume, logs, and the errors, each with --json', async () => {
  const s = setup('factory-jobs-cmds-');
  await s.apply(`name: cmds
jobs:
  - name: nap
    schedule: "* * * * * *"
    concurrency: forbid
    command: ["sh", "-c", "echo hello from $FACTORY_RUN; while [ ! -e ${s.file('release')} ]; do sleep 0.1; done"]
    history: {succeeded: 1000, failed: 1000}
    resources: {cpus: 0.01, mem: 16Mi}
`);
  // its runs last until the test writes the release file; every run is kept (the forced run's logs are
  // read at the end: with the default 3 successes kept, a slow machine's runs after the resumption
  // pruned it first)
  // no host: jobs run says where jobs run; list and history read the state alone
  const [noHost, noHostJson, listed] = await Promise.all([s.cli(['jobs', 'run', 'nap']), s.cli(['jobs', 'run', 'nap', '--json']), s.jobs()]);
  expect(noHost.code).toBe(1);
  expect(noHost.stderr).toMatch(/jobs run on a control host, and none serves this state/);
  expect(noHost.stderr).toContain(`factory control serve --state ${s.state}`);
  expect(noHostJson.code).toBe(1);
  expect(JSON.parse(noHostJson.stdout).error).toMatchObject({ code: 'E_NO_CONTROL', hint: expect.stringContaining('factory control serve') });
  expect(listed).toMatchObject([{ id: 'cmds/nap', suspended: false, running: 0, counts: { runs: 0 } }]);

  await s.startHost();
  await s.until('a run of cmds/nap to start', (e) => e.job === 'cmds/nap' && e.kind === 'job-run-started');
  expect((await s.liveRuns('cmds/nap')).some((r) => r.state === 'running')).toBe(true);
  // forbid: a run now waits for the one going, unless forced
  const busy = await s.cli(['jobs', 'run', 'nap']);
  expect(busy.code).toBe(1);
  expect(busy.stderr).toMatch(/cmds\/nap: not started: concurrency: forbid, run cmds\/nap\/\S+ is still running \(--force runs it anyway\)/);
  const { run: forced } = await s.json<{ run: RunRecord }>(['jobs', 'run', 'nap', '--force']);
  expect(forced).toMatchObject({ job: 'cmds/nap', trigger: 'manual', agent: 'local' });
  expect(forced.id).toBe(`cmds/nap/${forced.slot}`);

  // suspended: its slots are skipped; resumed: they run again
  const sus = await s.json<{ job: JobView }>(['jobs', 'suspend', 'nap']);
  expect(sus.job).toMatchObject({ suspended: true });
  expect(sus.job.next).toBeUndefined();
  // three more skips than at the suspension (one may be a forbid skip decided just before it)
  expect(await waitFor(async () => (await s.liveJob('cmds/nap')).counts.skipped >= sus.job.counts.skipped + 3, s.timeLeft(), 100)).toBe(true);
  writeFileSync(s.file('release'), '');
  const res = await s.json<{ job: JobView }>(['jobs', 'resume', 'nap']);
  expect(res.job.suspended).toBe(false);
  const events = async () => (await s.events()).filter((e) => e.job === 'cmds/nap');
  const marks = await events();
  const suspendedAt = marks.find((e) => e.kind === 'job-suspended')!.at;
  const resumedAt = marks.find((e) => e.kind === 'job-resumed')!.at;
  const resumed = await s.until('a run of cmds/nap scheduled after the resumption', (e) => e.job === 'cmds/nap' && e.kind === 'job-run-scheduled' && e.slot! > resumedAt);
  expect((await s.liveRuns('cmds/nap')).find((r) => r.id === resumed.run)).toMatchObject({ trigger: 'schedule' });
  const all = await events();
  const suspendedSkips = all.filter((x) => x.kind === 'job-slot-skipped' && /skipped: the job is suspended$/.test(x.message));
  expect(suspendedSkips.length).toBeGreaterThanOrEqual(2);
  for (const e of suspendedSkips) expect(e.slot! > suspendedAt && e.slot! <= resumedAt, e.message).toBe(true);
  for (const e of all.filter((x) => x.kind === 'job-run-scheduled' && x.run !== forced.id)) expect(e.slot! <= suspendedAt || e.slot! > resumedAt, e.message).toBe(true);

  // a run's output; with --json one object a line
  const [logs, logsJson] = await Promise.all([s.cli(['jobs', 'logs', forced.id]), s.cli(['jobs', 'logs', forced.id, '--json'])]);
  expect(logs.code, logs.stderr).toBe(0);
  expect(logs.stdout).toBe(`hello from ${forced.id}\n`);
  expect(logsJson.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([{ task: forced.id, stream: 'stdout', line: `hello from ${forced.id}` }]);

  // an unknown job: exit 1 and a message naming it, from every command (and as JSON)
  const unknown = [['jobs', 'run', 'nope'], ['jobs', 'history', 'nope'], ['jobs', 'suspend', 'nope'], ['jobs', 'logs', 'nope']];
  const [unknownJson, ...answers] = await Promise.all([s.cli(['jobs', 'run', 'cmds/nope', '--json']), ...unknown.map((args) => s.cli(args))]);
  for (const [i, r] of answers.entries()) {
    expect(r!.code, unknown[i]!.join(' ')).toBe(1);
    expect(r!.stderr, unknown[i]!.join(' ')).toMatch(/no job 'nope' in the applied plans/);
  }
  expect(unknownJson.code).toBe(1);
  expect(JSON.parse(unknownJson.stdout).error).toMatchObject({ code: 'E_JOB_UNKNOWN', message: "no job 'cmds/nope' in the applied plans" });
}, JOB_TEST_MS);
