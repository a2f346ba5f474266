/**
 * RunWatcher follows runs after their start: it asks the agents of runs still going how their tasks
 * are, records ends (exit code, signal), stops a run past its timeout, retries a failed run with
 * exponential backoff, prunes each job's history to its limits (removing the pruned runs' task
 * folders), and, when the host starts, adopts what a previous host left (recover).
 */
import type { TaskStatus } from '../protocol/messages.js';
import type { StateBackend } from '../state/backend.js';
import type { RunAgents } from './agents.js';
import type { Dispatcher } from './dispatch.js';
import { placeRuns } from './place.js';
import { pruneHistory, retryDelayMs } from './policy.js';
import { jobEvent } from './store.js';
import { RUN_ENDED, runTaskName, type JobRecord, type RunRecord, type RunState } from './types.js';
import type { RunWriter } from './writer.js';

/** RunWatcherOptions wire a RunWatcher. */
export interface RunWatcherOptions {
  state: StateBackend;
  agents: RunAgents;
  writer: RunWriter;
  log: (line: string) => void;
  now: () => number;
  pollMs?: number;
}

const DEAD: readonly string[] = ['exited', 'failed', 'finished', 'stopped'];

/** RunWatcher follows runs to their end. */
export class RunWatcher {
  private lastPoll = 0;
  /** polling is the poll of the agents in flight (one at a time). */
  private polling?: Promise<void>;
  /** stopping are runs being stopped (replace, timeout), not to be recorded ended twice. */
  private readonly stopping = new Set<string>();

  constructor(private readonly o: RunWatcherOptions) {}

  private job(id: string): JobRecord | undefined {
    return this.o.state.view().get('jobs', id);
  }

  /** started records the answer to a start. */
  started(id: string, status: TaskStatus, dispatchedAt: string): void {
    const run = this.o.writer.run(id);
    if (!run || RUN_ENDED.includes(run.state)) return;
    this.observed({ ...run, dispatchedAt }, status);
  }

  /** observed records what the agent reports of a run's task. */
  private observed(run: RunRecord, status: TaskStatus): void {
    const job = this.job(run.job);
    const meta = { pid: status.pid, startedAt: status.startedAt ?? run.startedAt };
    if (!DEAD.includes(status.state)) {
      if (run.state !== 'running' || run.dispatchedAt !== this.o.writer.run(run.id)?.dispatchedAt) {
        const next: RunRecord = { ...run, ...meta, state: 'running' };
        this.o.writer.putRun(next, ...(job ? [jobEvent(job, 'job-run-started', `${run.id}: started on ${run.agent}${status.pid ? ` (pid ${status.pid})` : ''}${run.attempt > 1 ? `, attempt ${run.attempt}` : ''}`, { run: next })] : []));
      }
      return;
    }
    if (this.stopping.has(run.id)) return;
    const ok = status.state !== 'failed' && status.exitCode === 0 && !status.signal;
    const reason = ok ? undefined : status.error ? `could not start: ${status.error}` : status.signal ? `killed by ${status.signal}` : status.exitCode !== undefined ? `exit code ${status.exitCode}` : 'ended without an exit status (its process was killed with its executor)';
    this.ended(run, ok ? 'succeeded' : 'failed', { ...meta, finishedAt: status.finishedAt, exitCode: status.exitCode, signal: status.signal, reason });
  }

  /** ended records the end of a run's attempt: done, or waiting for a retry. */
  private ended(run: RunRecord, state: RunState, end: Partial<RunRecord>): void {
    const job = this.job(run.job);
    const now = this.o.now();
    const finishedAt = end.finishedAt ?? new Date(now).toISOString();
    const retries = job?.spec.retries ?? 0;
    if (state === 'failed' && job && run.attempt <= retries) {
      const delay = retryDelayMs(job.spec.backoffMs, run.attempt, job.spec.backoffMaxMs);
      const next: RunRecord = {
        ...run,
        state: 'waiting',
        attempts: [...run.attempts, { attempt: run.attempt, agent: run.agent ?? '', task: run.task ?? '', startedAt: end.startedAt ?? run.startedAt, finishedAt, exitCode: end.exitCode, signal: end.signal, reason: end.reason }],
        retryAt: new Date(now + delay).toISOString(),
        reason: end.reason,
        pid: undefined,
      };
      this.o.writer.putRun(next, jobEvent(job, 'job-run-retried', `${run.id}: attempt ${run.attempt} failed (${end.reason}); retry ${run.attempt} of ${retries} in ${Math.round(delay / 1000)} s`, { run: next }));
      return;
    }
    const next: RunRecord = { ...run, ...end, state, finishedAt, retryAt: undefined };
    const kind = state === 'succeeded' ? 'job-run-succeeded' : state === 'stopped' ? 'job-run-stopped' : 'job-run-failed';
    const what = state === 'succeeded' ? 'succeeded' : `${state}: ${end.reason ?? ''}`;
    if (!job) {
      this.o.writer.putRun(next);
      return;
    }
    this.o.writer.putRun(next, jobEvent(job, kind, `${run.id}: ${what}${run.attempt > 1 ? ` after ${run.attempt} attempts` : ''}`, { run: next }));
    const cur = this.o.writer.cursorOf(job);
    const counts = { ...cur.counts };
    if (state === 'succeeded') counts.succeeded += 1;
    else counts.failed += 1;
    this.o.writer.putCursor({
      ...cur,
      counts,
      lastRun: { id: run.id, slot: run.slot, state, finishedAt, ...(end.exitCode !== undefined ? { exitCode: end.exitCode } : {}) },
      ...(state === 'succeeded' ? { lastSuccessAt: finishedAt } : {}),
    });
    this.prune(job);
  }

  /** prune drops a job's ended runs beyond its history limits and removes their task folders. */
  private prune(job: JobRecord): void {
    const ended = this.o.writer.runsOf(job.id).filter((r) => RUN_ENDED.includes(r.state));
    const drop = pruneHistory(ended.map((r) => ({ id: r.id, slot: Date.parse(r.slot), succeeded: r.state === 'succeeded' })), job.spec.history);
    for (const id of drop) {
      const r = this.o.writer.run(id)!;
      this.o.writer.deleteRun(id);
      void this.removeTasks(r);
    }
  }

  /** removeTasks removes the task folders of every attempt of a run from their agents (best effort). */
  private async removeTasks(r: RunRecord): Promise<void> {
    const tasks = [...r.attempts.map((a) => ({ agent: a.agent, task: a.task })), ...(r.agent && r.task ? [{ agent: r.agent, task: r.task }] : [])];
    for (const t of tasks) {
      if (!t.agent || !t.task) continue;
      try {
        const exec = await this.o.agents.executor(r.plan, t.agent);
        await exec.stop(t.task, { remove: true, graceMs: 0 });
      } catch (err) {
        this.o.log(`jobs: ${r.id}: cannot remove ${t.task} from ${t.agent}: ${(err as Error).message}`);
      }
    }
  }

  /** stopRun stops a run's task (replace, timeout, job gone) and records it as ended. */
  async stopRun(run: RunRecord, reason: string, state: 'stopped' | 'failed'): Promise<void> {
    this.stopping.add(run.id);
    let status: TaskStatus | undefined;
    try {
      if (run.agent && run.task) {
        const job = this.job(run.job);
        const exec = await this.o.agents.executor(run.plan, run.agent);
        status = await exec.stop(run.task, { graceMs: job?.spec.stopGraceMs });
      }
    } catch (err) {
      this.o.log(`jobs: ${run.id}: cannot stop ${run.task} on ${run.agent}: ${(err as Error).message}`);
    } finally {
      this.stopping.delete(run.id);
    }
    const cur = this.o.writer.run(run.id);
    if (!cur || RUN_ENDED.includes(cur.state)) return;
    this.ended(cur, state, { reason, exitCode: status?.exitCode, signal: status?.signal, finishedAt: status?.finishedAt, startedAt: status?.startedAt ?? cur.startedAt });
  }

  /**
   * pass asks the agents of the runs still going how they are (at most every pollMs), stops runs
   * past their timeout, and starts the retries that are due; returns when it wants to run again.
   */
  async pass(dispatcher: Dispatcher): Promise<number> {
    const now = this.o.now();
    const poll = this.o.pollMs ?? 500;
    let wake = now + 60_000;
    const runs = this.o.writer.allRuns().filter((r) => !RUN_ENDED.includes(r.state));
    // runs whose job is gone (its plan destroyed): stopped and forgotten
    for (const r of this.o.writer.allRuns()) {
      if (this.job(r.job)) continue;
      if (!RUN_ENDED.includes(r.state) && !this.stopping.has(r.id)) void this.stopRun(r, 'its job was removed', 'stopped');
      else if (RUN_ENDED.includes(r.state)) {
        this.o.writer.deleteRun(r.id);
        void this.removeTasks(r);
      }
    }
    for (const c of this.o.writer.allCursors()) if (!this.job(c.id)) this.o.writer.deleteCursor(c.id);
    // retries and runs waiting for an agent
    for (const r of runs.filter((x) => x.state === 'waiting')) {
      const at = Date.parse(r.retryAt ?? '');
      if (at > now) {
        wake = Math.min(wake, at);
        continue;
      }
      const job = this.job(r.job);
      if (job) await this.retry(r, job, dispatcher);
    }
    // timeouts
    for (const r of runs.filter((x) => x.state === 'running' && x.startedAt)) {
      const job = this.job(r.job);
      if (!job?.spec.timeoutMs || this.stopping.has(r.id)) continue;
      const due = Date.parse(r.startedAt!) + job.spec.timeoutMs;
      if (due <= now) void this.stopRun(r, `timed out after ${Math.round(job.spec.timeoutMs / 1000)} s`, 'failed');
      else wake = Math.min(wake, due);
    }
    const watched = runs.filter((r) => (r.state === 'running' || r.state === 'claimed') && r.agent && !dispatcher.inflight.has(r.id));
    if (watched.length > 0) {
      if (now - this.lastPoll >= poll && !this.polling) {
        this.lastPoll = now;
        // not waited for: an agent slow to answer (busy starting a thousand runs) must not hold up the
        // next slot's pass; what it answers is applied against the runs as they are by then
        this.polling = this.look(watched, dispatcher, false)
          .catch((err: Error) => this.o.log(`jobs: polling the agents failed: ${err.message}`))
          .finally(() => (this.polling = undefined));
      }
      // while a poll waits for its answer, the next one is due a poll interval from now, not at once
      wake = Math.min(wake, this.polling ? now + poll : this.lastPoll + poll);
    }
    return wake;
  }

  /** settle waits for the poll of the agents in flight. */
  async settle(): Promise<void> {
    await this.polling;
  }

  /** retry claims the next attempt of a waiting run (a new task name) and starts it. */
  private async retry(r: RunRecord, job: JobRecord, dispatcher: Dispatcher): Promise<void> {
    // a run no agent could take yet: missed once its slot is too late to start
    const deadline = r.task === undefined ? this.startDeadline(r, job, dispatcher) : undefined;
    if (deadline !== undefined && this.o.now() > deadline) {
      this.tooLate(r, job, `not started before its deadline: ${r.reason ?? 'no agent fits'}`, `not started before its deadline: ${r.reason ?? 'no agent fits'}`);
      return;
    }
    const placed = r.agent !== undefined && r.attempts.length < r.attempt;
    const attempt = placed || r.task === undefined ? r.attempt : r.attempt + 1;
    let agent: string | undefined;
    try {
      const view = await this.o.agents.view(job.plan);
      const [p] = placeRuns(view, [{ run: r, job }]);
      agent = p?.agent;
      if (!agent) {
        this.o.writer.putRun({ ...r, reason: p && 'reason' in p ? p.reason : 'no agent fits', retryAt: new Date(this.o.now() + 1000).toISOString() });
        return;
      }
    } catch (err) {
      this.o.writer.putRun({ ...r, reason: (err as Error).message, retryAt: new Date(this.o.now() + 1000).toISOString() });
      return;
    }
    const next: RunRecord = { ...r, state: 'claimed', attempt, agent, task: runTaskName(r, attempt), retryAt: undefined, startedAt: undefined, pid: undefined };
    // the new attempt's task name is recorded before its start is sent
    this.o.writer.putRun(next);
    await this.o.writer.flush();
    dispatcher.start(next, job);
  }

  /** look asks each agent of the given runs what runs and records what changed; recovering, it also starts what never started. */
  private async look(runs: RunRecord[], dispatcher: Dispatcher, recovering: boolean): Promise<void> {
    const byAgent = new Map<string, RunRecord[]>();
    for (const r of runs) byAgent.set(r.agent!, [...(byAgent.get(r.agent!) ?? []), r]);
    await Promise.all(
      [...byAgent].map(async ([agent, list]) => {
        let tasks: TaskStatus[];
        try {
          const exec = await this.o.agents.executor(list[0]!.plan, agent);
          tasks = await exec.inspect();
        } catch (err) {
          // unreachable: nothing is decided about its runs (they may be running); asked again later
          if (recovering) this.o.log(`jobs: cannot ask ${agent} about ${list.length} run(s): ${(err as Error).message}`);
          return;
        }
        const byTask = new Map(tasks.map((t) => [t.task, t]));
        for (const run of list) {
          const cur = this.o.writer.run(run.id);
          if (!cur || RUN_ENDED.includes(cur.state) || dispatcher.inflight.has(run.id)) continue;
          const t = byTask.get(cur.task!);
          if (t) {
            if (recovering) {
              const job = this.job(cur.job);
              if (job) this.o.writer.event(jobEvent(job, 'job-run-adopted', `${cur.id}: adopted on ${agent} (${t.state})`, { run: cur }));
            }
            this.observed(cur, t);
          } else if (cur.state === 'claimed') {
            this.neverStarted(cur, dispatcher);
          } else {
            this.ended(cur, 'failed', { reason: `its task ${cur.task} is gone from ${agent}` });
          }
        }
      }),
    );
  }

  /**
   * missedIfLate records a claimed run as missed when its first attempt's start would go out past its
   * deadline (it waited behind earlier starts to a busy agent); true when it did, and the start is not sent.
   */
  missedIfLate(run: RunRecord, job: JobRecord, dispatcher: Dispatcher): boolean {
    if (run.attempt !== 1) return false;
    const deadline = this.startDeadline(run, job, dispatcher);
    if (deadline === undefined || this.o.now() <= deadline) return false;
    return this.missedBehindStarts(run, job);
  }

  /**
   * missedAtAgent records a claimed run as missed when its agent refused the start as too late
   * (E_TOO_LATE: it reached the driver past its deadline, behind earlier starts): nothing was started.
   */
  missedAtAgent(run: RunRecord, job: JobRecord, message: string): void {
    this.missedBehindStarts(run, job, message);
  }

  /** missedBehindStarts records a run still claimed as missed, its start held up behind others (the event says message, else the reason); true when it did. */
  private missedBehindStarts(run: RunRecord, job: JobRecord, message?: string): boolean {
    const cur = this.o.writer.run(run.id);
    if (!cur || cur.state !== 'claimed') return false;
    const why = `not started before its deadline: ${cur.agent} was still busy with earlier starts`;
    this.tooLate(cur, job, why, message ?? why);
    return true;
  }

  /** startDeadline is the last moment a run's first attempt may start: startingDeadline, else the job's next slot (schedule runs). */
  startDeadline(run: RunRecord, job: JobRecord, dispatcher: Dispatcher): number | undefined {
    const slot = Date.parse(run.slot);
    if (job.spec.startingDeadlineMs !== undefined) return slot + job.spec.startingDeadlineMs;
    return run.trigger === 'schedule' || run.trigger === 'catch-up' ? nextSlotAfter(dispatcher, job, slot) : undefined;
  }

  /** tooLate records a run whose first attempt cannot start any more as missed (its slot is accounted for as missed). */
  private tooLate(run: RunRecord, job: JobRecord, reason: string, message: string): void {
    const next: RunRecord = { ...run, state: 'missed', reason, finishedAt: new Date(this.o.now()).toISOString(), retryAt: undefined };
    const cur = this.o.writer.cursorOf(job);
    this.o.writer.putRun(next, jobEvent(job, 'job-slot-missed', `${run.id}: ${message}`, { run: next }));
    this.o.writer.putCursor({ ...cur, counts: { ...cur.counts, runs: cur.counts.runs - 1, missed: cur.counts.missed + 1 } });
  }

  /** neverStarted handles a claimed run whose task its agent does not have: start it, unless too late. */
  private neverStarted(run: RunRecord, dispatcher: Dispatcher): void {
    const job = this.job(run.job);
    if (!job) return;
    const deadline = this.startDeadline(run, job, dispatcher);
    if (deadline !== undefined && this.o.now() > deadline) {
      this.tooLate(run, job, 'claimed, never started, and too late to start now', 'claimed by a host that stopped before starting it; too late to start now');
      return;
    }
    dispatcher.start(run, job);
  }

  /** recover adopts the runs a previous host left going: asks their agents and records or starts them. */
  async recover(dispatcher: Dispatcher): Promise<void> {
    this.o.writer.load();
    const going = this.o.writer.allRuns().filter((r) => (r.state === 'running' || r.state === 'claimed') && r.agent);
    if (going.length === 0) return;
    this.o.log(`jobs: ${going.length} run(s) left going by the previous host: asking their agents`);
    await this.look(going, dispatcher, true);
  }
}

function nextSlotAfter(dispatcher: Dispatcher, job: JobRecord, slot: number): number | undefined {
  return dispatcher.scheduleOf(job)?.next(slot);
}
