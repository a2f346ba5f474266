import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { START_CONCURRENCY } from '../../src/jobs/dispatch.js';
import { JobRunner } from '../../src/jobs/runner.js';
import type { JobRecord, JobSpec, RunRecord } from '../../src/jobs/types.js';
import { FileBackend } from '../../src/state/file-backend.js';
import { StateWork } from '../../src/state/work.js';
import { jobSpec } from './specs.js';
import { FakeAgents, FakeClock } from './fake-agents.js';

let dir: string;
let state: FileBackend & { dir: string };
let clock: FakeClock;
let agents: FakeAgents;
const logs: string[] = [];
const T0 = Date.parse('2026-12-01T00:00:00.000Z');

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'factory-jobs-'));
  state = Object.assign(await FileBackend.open(dir), { dir });
  clock = new FakeClock(T0 + 200);
  agents = new FakeAgents(clock);
  logs.length = 0;
});
afterEach(async () => {
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

const spec = jobSpec;

async function putJobs(...specs: JobSpec[]): Promise<void> {
  await state.lock();
  try {
    const w = new StateWork(state);
    for (const s of specs) {
      const rec: JobRecord = { id: `p/${s.name}`, plan: 'p', name: s.name, project: 'default', spec: s, createdAt: new Date(T0).toISOString(), suspended: false, updatedAt: new Date(T0).toISOString() };
      w.jobs.put(rec);
    }
    await w.flush();
  } finally {
    await state.unlock();
  }
}

function runner(): JobRunner {
  return new JobRunner({ state, agents, log: (l) => logs.push(l), now: clock.now, pollMs: 0 });
}

/** tick moves the clock and runs one pass (and lets the starts and the polls of the agent answer). */
async function tick(r: JobRunner, ms = 1000): Promise<void> {
  clock.advance(ms);
  await r.pass();
  await new Promise((res) => setTimeout(res, 5));
  await r.pass();
  await r.settle();
}

const runs = (): RunRecord[] => state.view().list('runs').sort((a, b) => a.slot.localeCompare(b.slot));
const events = (kind: string) => state.eventsSince(0).events.filter((e) => e.kind === kind);

describe('JobRunner with a fake clock and agent', () => {
  it('a per-second job runs each slot once, on its slot, and keeps its history to the limit', async () => {
    await putJobs(spec('tick', { history: { succeeded: 3, failed: 5 } }));
    const r = runner();
    for (let i = 0; i < 10; i++) {
      await tick(r);
      for (const t of agents.running()) agents.exit(t, 0);
    }
    await tick(r, 0);
    await r.stop();
    // slots 1..10 s; each task started exactly once
    expect(agents.started).toHaveLength(10);
    expect(new Set(agents.started).size).toBe(10);
    expect(events('job-run-scheduled').map((e) => e.slot)).toEqual(Array.from({ length: 10 }, (_, i) => new Date(T0 + (i + 1) * 1000).toISOString()));
    expect(events('job-slot-missed')).toEqual([]);
    // history: the newest 3 succeeded runs are kept, the others' task folders removed
    expect(runs().map((x) => [x.slot.slice(17, 19), x.state])).toEqual([['08', 'succeeded'], ['09', 'succeeded'], ['10', 'succeeded']]);
    expect(agents.tasks.size).toBe(3);
    const cur = state.view().get('cursors', 'p/tick')!;
    expect(cur.counts).toEqual({ runs: 10, succeeded: 10, failed: 0, missed: 0, skipped: 0 });
  });

  it('forbid skips slots while a run still runs; replace stops the old run', async () => {
    await putJobs(spec('f', { concurrency: 'forbid' }), spec('r', { concurrency: 'replace' }));
    const r = runner();
    await tick(r);
    await tick(r);
    await tick(r);
    await r.stop();
    const f = runs().filter((x) => x.job === 'p/f');
    expect(f).toHaveLength(1);
    expect(events('job-slot-skipped').filter((e) => e.job === 'p/f').map((e) => e.message)).toEqual([
      expect.stringMatching(/^p\/f: slot 2026-12-01T00:00:02.000Z skipped: concurrency: forbid, run p\/f\/2026-12-01T00:00:01.000Z is still running$/),
      expect.stringMatching(/slot 2026-12-01T00:00:03.000Z skipped/),
    ]);
    const rr = runs().filter((x) => x.job === 'p/r');
    expect(rr.map((x) => x.state)).toEqual(['stopped', 'stopped', 'running']);
    expect(rr[0]!.reason).toBe('replaced by the run of 2026-12-01T00:00:02.000Z');
    expect(agents.running().filter((t) => t.startsWith('p/r/'))).toEqual([rr[2]!.task]);
  });

  it('a failing run is retried with doubling backoff, each attempt a new task, and ends failed after its retries', async () => {
    await putJobs(spec('flaky', { schedule: '0 0 1 1 *', retries: 2, backoffMs: 10_000, backoffMaxMs: 60_000 }));
    const r = runner();
    const run = await r.runNow('p/flaky');
    await tick(r, 0);
    const first = runs()[0]!;
    expect(first.id).toBe(run.id);
    agents.exit(first.task!, 3);
    await tick(r, 0);
    expect(runs()[0]).toMatchObject({ state: 'waiting', retryAt: new Date(clock.t + 10_000).toISOString(), reason: 'exit code 3' });
    await tick(r, 10_000);
    const second = runs()[0]!;
    expect(second).toMatchObject({ state: 'running', attempt: 2 });
    expect(second.task).not.toBe(first.task);
    agents.exit(second.task!, 3);
    await tick(r, 0);
    expect(runs()[0]!.retryAt).toBe(new Date(clock.t + 20_000).toISOString());
    await tick(r, 20_000);
    agents.exit(runs()[0]!.task!, 4);
    await tick(r, 0);
    await r.stop();
    expect(runs()[0]).toMatchObject({ state: 'failed', attempt: 3, exitCode: 4, reason: 'exit code 4' });
    expect(runs()[0]!.attempts.map((a) => a.exitCode)).toEqual([3, 3]);
    expect(events('job-run-retried')).toHaveLength(2);
    expect(agents.started).toHaveLength(3);
  });

  it('a dependent job runs once both parents succeeded since its last run', async () => {
    await putJobs(spec('a', { schedule: '0 0 1 1 *' }), spec('b', { schedule: '0 0 1 1 *' }), spec('child', { schedule: undefined, after: ['a', 'b'] }));
    const r = runner();
    await r.runNow('p/a');
    await tick(r, 0);
    agents.exit(runs().find((x) => x.job === 'p/a')!.task!, 0);
    await tick(r, 100);
    expect(runs().filter((x) => x.job === 'p/child')).toHaveLength(0);
    await r.runNow('p/b');
    await tick(r, 0);
    agents.exit(runs().find((x) => x.job === 'p/b')!.task!, 0);
    await tick(r, 100);
    await tick(r, 100);
    const child = runs().filter((x) => x.job === 'p/child');
    expect(child).toHaveLength(1);
    expect(child[0]!.trigger).toBe('after');
    await r.stop();
  });

  it('a run past its timeout is stopped and counted failed', async () => {
    await putJobs(spec('slow', { schedule: '0 0 1 1 *', timeoutMs: 5000 }));
    const r = runner();
    await r.runNow('p/slow');
    await tick(r, 0);
    await tick(r, 4000);
    expect(runs()[0]!.state).toBe('running');
    await tick(r, 2000);
    await tick(r, 0);
    await r.stop();
    expect(runs()[0]).toMatchObject({ state: 'failed', reason: 'timed out after 5 s', signal: 'SIGTERM' });
  });

  it('a new host adopts a claimed run whose start was sent, and starts one whose start never went, each once', async () => {
    await putJobs(spec('x', { concurrency: 'allow' }));
    const a = runner();
    await tick(a); // slot 1 claimed and started
    agents.down = true; // slot 2: claimed, the start never reaches the agent
    await tick(a);
    await a.stop();
    expect(runs().map((x) => x.state)).toEqual(['running', 'claimed']);
    agents.down = false;
    agents.exit(runs()[0]!.task!, 0);
    // the next host starts 300 ms later, before slot 3
    clock.advance(300);
    const b = runner();
    await b.pass();
    await new Promise((res) => setTimeout(res, 5));
    await b.pass();
    await b.settle();
    await b.stop();
    expect(runs().map((x) => x.state)).toEqual(['succeeded', 'running']);
    expect(agents.started).toEqual([runs()[0]!.task, runs()[1]!.task]);
    expect(events('job-run-adopted')).toHaveLength(1);
  });

  it('a run no agent can take waits, then is recorded missed once its next slot came due', async () => {
    await putJobs(spec('big', { schedule: '*/5 * * * * *', resources: { cpus: 100, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] } }));
    const r = runner();
    await tick(r, 4800); // slot 5 s
    expect(runs()[0]).toMatchObject({ state: 'waiting', reason: expect.stringMatching(/^no agent fits: cpus/) });
    await tick(r, 2000);
    expect(runs()[0]!.state).toBe('waiting');
    await tick(r, 3300); // past slot 10 s: the first one is too late now
    await r.stop();
    const [first, second] = runs();
    expect(first).toMatchObject({ state: 'missed', reason: expect.stringMatching(/^not started before its deadline: no agent fits/) });
    expect(second!.state).toBe('waiting');
    expect(agents.started).toEqual([]);
    expect(state.view().get('cursors', 'p/big')!.counts).toMatchObject({ runs: 1, missed: 1 });
  });

  it('an agent slow to answer a poll does not hold up the next slots', async () => {
    await putJobs(spec('tick'));
    const r = runner();
    await tick(r); // slot 1 s runs
    const release = agents.holdInspect();
    clock.advance(1000);
    await r.pass(); // slot 2 s; the poll of slot 1's run waits for the agent
    await new Promise((res) => setTimeout(res, 5));
    clock.advance(1000);
    await r.pass(); // slot 3 s is claimed and started all the same
    await new Promise((res) => setTimeout(res, 5));
    expect(runs().map((x) => x.slot.slice(17, 19))).toEqual(['01', '02', '03']);
    expect(agents.started).toHaveLength(3);
    release();
    agents.exit(runs()[0]!.task!, 0);
    await tick(r, 0);
    await r.stop();
    expect(runs().map((x) => x.state)).toEqual(['succeeded', 'running', 'running']);
  });

  it('a start that waited behind others past its next slot is not run late: not sent when queued here, refused by the agent when queued there', async () => {
    const n = START_CONCURRENCY + 1;
    await putJobs(...Array.from({ length: n }, (_, i) => spec(`j${i}`)));
    const r = runner();
    const release = agents.holdRuns();
    clock.advance(1000);
    await r.pass(); // slot 1 s: n runs claimed, START_CONCURRENCY starts sent (held by the agent), one waits
    clock.advance(1500); // the agent gets to them after slot 2 s came due
    release();
    await r.settle();
    await r.stop();
    const missed = runs().filter((x) => x.state === 'missed');
    expect(missed).toHaveLength(n);
    for (const m of missed) expect(m.reason).toBe('not started before its deadline: local was still busy with earlier starts');
    // the agent refused the ones it held (their deadline went with them); the last one was never sent
    expect(agents.started).toEqual([]);
    expect(agents.tooLate).toHaveLength(n - 1);
    const never = missed.find((m) => !agents.tooLate.includes(m.task!));
    expect(never).toBeDefined();
    for (const m of missed) expect(state.view().get('cursors', m.job)!.counts).toMatchObject({ runs: 0, missed: 1 });
    expect(events('job-slot-missed')).toHaveLength(n);
  });

  it('a start that reaches the agent before its deadline starts, and one re-sent late for a run that started is reported, not refused', async () => {
    await putJobs(spec('a'));
    const r = runner();
    clock.advance(1000);
    await r.pass();
    await r.settle();
    expect(agents.started).toHaveLength(1);
    const [run] = runs();
    expect(run).toMatchObject({ state: 'running' });
    // the deadline went with the start: the next slot (no startingDeadline), on the agent's clock
    expect(agents.tasks.get(run!.task!)!.spec.notAfter).toBe(Date.parse(run!.slot) + 1000);
    // the same start again, past its deadline (a new host re-sends a claimed run's start): the task exists
    const exec = await agents.executor();
    clock.advance(5000);
    const again = await exec.run({ ...agents.tasks.get(run!.task!)!.spec, notAfter: clock.now() - 1000 });
    expect(again.state).toBe('running');
    expect(agents.tooLate).toEqual([]);
    await r.stop();
  });

  it('slots that came due while no host ran are missed (catchUp: none) and counted, never silent', async () => {
    await putJobs(spec('m'));
    clock.advance(5000);
    const r = runner();
    await r.pass();
    await r.stop();
    expect(runs()).toHaveLength(0);
    expect(events('job-slot-missed')).toHaveLength(5);
    expect(state.view().get('cursors', 'p/m')!.counts.missed).toBe(5);
  });

  it('a run that ends while the next pass places its runs keeps its count and last run (the claim does not write an older cursor)', async () => {
    await putJobs(spec('quick'));
    // the first run's start is answered only while the next pass waits for its placement view, and
    // then as already ended: the watcher records the success between the pass reading the cursor and
    // its claim being written (on a real host, a short run's start answer often lands there)
    let answer: (() => void) | undefined;
    const answered = new Promise<void>((res) => (answer = res));
    let gate: Promise<void> | undefined = answered;
    const exec = await agents.executor();
    agents.executor = async () => ({
      ...exec,
      run: async (spec) => {
        const held = gate;
        gate = undefined;
        const status = await exec.run(spec);
        if (!held) return status;
        await held;
        agents.exit(spec.task, 0);
        return agents.tasks.get(spec.task)!.status;
      },
    });
    const view = agents.view.bind(agents);
    let passes = 0;
    agents.view = async () => {
      if (++passes === 2) {
        answer!();
        await new Promise((res) => setTimeout(res, 5));
      }
      return view();
    };
    const r = runner();
    // slot 1: claimed, its start waits (not settled: the start answers only during the next pass)
    clock.advance(1000);
    await r.pass();
    await new Promise((res) => setTimeout(res, 5));
    await r.pass();
    await tick(r); // slot 2: while it is placed, slot 1's run is recorded succeeded
    await r.stop();
    const [first] = runs();
    expect(first).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const cur = state.view().get('cursors', 'p/quick')!;
    expect(cur.counts).toMatchObject({ runs: 2, succeeded: 1 });
    expect(cur.lastRun).toMatchObject({ id: first!.id, state: 'succeeded' });
    expect(cur.lastSuccessAt).toBe(first!.finishedAt);
  });
});
