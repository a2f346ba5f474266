/**
 * Dispatcher turns due slots into runs: it asks the policy which slots run, places the runs, claims
 * them in the state (one guarded commit for every run of the pass), and then sends the starts.
 */
import pLimit from 'p-limit';
import { FactoryError } from '../errors.js';
import type { TaskRunSpec } from '../protocol/messages.js';
import type { EventInput, StateBackend } from '../state/backend.js';
import type { RunAgents } from './agents.js';
import { placeRuns, runSpecHash, type RunPlacement } from './place.js';
import { afterTrigger, decideManualRun, decideSlots, type SlotDecision } from './policy.js';
import { memoNext, parseSchedule, slotId, type JobSchedule } from './schedule.js';
import { jobEvent } from './store.js';
import { RUN_ENDED, runId, runTaskName, type JobCursor, type JobRecord, type RunRecord, type RunTrigger } from './types.js';
import type { RunWatcher } from './watch.js';
import type { CursorMove, RunWriter } from './writer.js';

/** MAX_SLOT_EVENTS bounds the one-by-one missed or skipped events of one job in one pass (the rest are counted in one event). */
const MAX_SLOT_EVENTS = 20;

/** START_CONCURRENCY bounds the starts in flight per agent; the others wait in the host, in order. */
export const START_CONCURRENCY = 64;

/** DispatcherOptions wire a Dispatcher. */
export interface DispatcherOptions {
  state: StateBackend & { dir: string };
  agents: RunAgents;
  writer: RunWriter;
  watcher: RunWatcher;
  log: (line: string) => void;
  now: () => number;
  hostStartedAt: number;
  observe?: (m: { run: string; dispatchMs: number; startMs?: number }) => void;
}

/** Dispatcher claims and starts runs. */
export class Dispatcher {
  private readonly schedules = new Map<string, { key: string; schedule: JobSchedule | undefined; error?: string }>();
  /** parsed are the schedules by text and zone, shared by the jobs that have the same (their next() remembered). */
  private readonly parsed = new Map<string, JobSchedule>();
  private readonly nextAt = new Map<string, number>();
  private readonly starting = new Set<Promise<void>>();
  private readonly limits = new Map<string, ReturnType<typeof pLimit>>();
  /** inflight are the runs whose start was sent and not answered yet. */
  readonly inflight = new Set<string>();

  constructor(private readonly o: DispatcherOptions) {}

  /** scheduleOf is a job's parsed schedule (cached per schedule text and zone); undefined for `after` jobs. */
  scheduleOf(job: JobRecord): JobSchedule | undefined {
    const key = `${job.spec.schedule ?? ''}\u0000${job.spec.timeZone}`;
    const held = this.schedules.get(job.id);
    if (held?.key === key) return held.schedule;
    let schedule: JobSchedule | undefined;
    let error: string | undefined;
    try {
      schedule = job.spec.schedule ? this.parsedSchedule(key, job.spec.schedule, job.spec.timeZone) : undefined;
    } catch (err) {
      error = (err as Error).message;
      this.o.log(`jobs: ${job.id}: ${error}; it is not scheduled`);
    }
    this.schedules.set(job.id, { key, schedule, error });
    this.nextAt.delete(job.id);
    return schedule;
  }

  /** parsedSchedule is the shared schedule of a text and zone, parsed once (throws a ScheduleError). */
  private parsedSchedule(key: string, text: string, zone: string): JobSchedule {
    let s = this.parsed.get(key);
    if (!s) {
      // forget schedules no job uses any more before the cache outgrows the jobs
      if (this.parsed.size > 2 * this.schedules.size + 16) {
        const used = new Set([...this.schedules.values()].map((h) => h.key));
        for (const k of this.parsed.keys()) if (!used.has(k)) this.parsed.delete(k);
      }
      s = memoNext(parseSchedule(text, zone));
      this.parsed.set(key, s);
    }
    return s;
  }

  /** jobs lists the jobs as applied. */
  jobs(): JobRecord[] {
    return this.o.state.view().list('jobs');
  }

  /** pass accounts for every due slot, claims the runs, sends their starts; returns when the next slot is due. */
  async pass(): Promise<number> {
    const now = this.o.now();
    const w = this.o.writer;
    w.load();
    const jobs = this.jobs();
    const active = activeByJob(w.allRuns());
    const runs: { run: RunRecord; job: JobRecord }[] = [];
    const moves: CursorMove[] = [];
    const events: EventInput[] = [];
    const replace: { run: RunRecord; by: string }[] = [];
    let wake = now + 60_000;
    for (const job of jobs) {
      const schedule = this.scheduleOf(job);
      const cur = w.cursorOf(job);
      if (job.spec.after?.length) {
        const slot = this.afterSlot(job, jobs, cur);
        if (slot !== undefined) this.take(job, decideAfter(job, slot, active.get(job.id) ?? []), now, active.get(job.id) ?? [], runs, moves, events, replace, 'after');
        continue;
      }
      if (!schedule) continue;
      const known = this.nextAt.get(job.id);
      if (known !== undefined && known > now) {
        wake = Math.min(wake, known);
        continue;
      }
      const d = decideSlots({
        schedule,
        settings: job.spec,
        suspended: job.suspended,
        cursor: Date.parse(cur.cursor),
        now,
        hostStartedAt: this.o.hostStartedAt,
        active: (active.get(job.id) ?? []).map((r) => ({ id: r.id, slot: Date.parse(r.slot) })),
      });
      this.take(job, d, now, active.get(job.id) ?? [], runs, moves, events, replace, 'schedule');
      if (d.next !== undefined) {
        this.nextAt.set(job.id, d.next);
        wake = Math.min(wake, d.next);
      } else this.nextAt.set(job.id, Number.POSITIVE_INFINITY);
    }
    if (runs.length === 0 && moves.length === 0 && events.length === 0) return wake;
    await this.claimAndStart(runs, moves, events, replace);
    return wake;
  }

  /** afterSlot is a dependent job's trigger: its parents' newest success, once all succeeded since its cursor. */
  private afterSlot(job: JobRecord, jobs: JobRecord[], cur: JobCursor): number | undefined {
    if (job.suspended || job.spec.suspend) return undefined;
    const parents = (job.spec.after ?? []).map((name) => {
      const p = jobs.find((j) => j.plan === job.plan && j.name === name);
      const c = p ? this.o.writer.cursorOf(p) : undefined;
      return c?.lastSuccessAt ? Date.parse(c.lastSuccessAt) : undefined;
    });
    return afterTrigger(parents, Date.parse(cur.cursor));
  }

  /** take turns one job's decision into claims, a cursor move and events; going are the job's runs that have not ended. */
  private take(job: JobRecord, d: SlotDecision, now: number, going: RunRecord[], runs: { run: RunRecord; job: JobRecord }[], moves: CursorMove[], events: EventInput[], replace: { run: RunRecord; by: string }[], trigger: RunTrigger): void {
    const add = { runs: 0, missed: 0, skipped: 0 };
    const say = (list: { slot: number; reason: string }[], kind: 'job-slot-missed' | 'job-slot-skipped', what: string) => {
      for (const [i, m] of list.entries()) {
        if (i < MAX_SLOT_EVENTS) events.push(jobEvent(job, kind, `${job.id}: slot ${slotId(m.slot)} ${what}: ${m.reason}`, { slot: slotId(m.slot) }));
      }
      if (list.length > MAX_SLOT_EVENTS) {
        events.push(jobEvent(job, kind, `${job.id}: ${list.length - MAX_SLOT_EVENTS} more slots ${what}, ${slotId(list[MAX_SLOT_EVENTS]!.slot)} to ${slotId(list.at(-1)!.slot)}`));
      }
    };
    say(d.missed, 'job-slot-missed', 'missed');
    say(d.skipped, 'job-slot-skipped', 'skipped');
    add.missed += d.missed.length;
    add.skipped += d.skipped.length;
    if (d.missedRange) {
      const r = d.missedRange;
      add.missed += r.count;
      events.push(jobEvent(job, 'job-slot-missed', `${job.id}: ${r.exact ? '' : 'at least '}${r.count} slots missed from ${slotId(r.from)} to before ${slotId(r.until)}: no control host ran`, { slot: slotId(r.from) }));
    }
    for (const id of d.replace) {
      const old = going.find((r) => r.id === id);
      if (old) replace.push({ run: old, by: d.run.at(-1) ? slotId(d.run.at(-1)!.slot) : 'a new run' });
    }
    for (const r of d.run) {
      const run = newRun(job, r.slot, trigger === 'after' ? 'after' : r.catchUp ? 'catch-up' : 'schedule', now);
      runs.push({ run, job });
      add.runs += 1;
    }
    moves.push({ job, to: { cursor: new Date(d.cursor).toISOString(), ...(d.next !== undefined ? { next: slotId(d.next) } : {}) }, add });
  }

  /** runNow claims and starts a run outside the schedule (concurrency applies unless force). */
  async runNow(jobIdText: string, opts: { force?: boolean; by?: string }): Promise<RunRecord> {
    this.o.writer.load();
    const job = this.o.state.view().get('jobs', jobIdText);
    if (!job) throw new FactoryError(`no job '${jobIdText}'`, { code: 'E_JOB_UNKNOWN', hint: 'factory jobs list names the jobs of the applied plans' });
    const going = this.o.writer.runsOf(job.id).filter((r) => !RUN_ENDED.includes(r.state));
    const d = decideManualRun(job.spec, going.map((r) => ({ id: r.id, slot: Date.parse(r.slot) })), Boolean(opts.force));
    if (!d.start) throw new FactoryError(`${job.id}: not started: ${d.reason}`, { code: 'E_JOB_BUSY' });
    let slot = this.o.now();
    while (this.o.writer.run(runId(job.id, slot))) slot += 1; // two manual runs in the same millisecond
    const run = { ...newRun(job, slot, 'manual', slot), ...(opts.by ? { by: opts.by } : {}) };
    const replace = d.replace.map((id) => ({ run: going.find((r) => r.id === id)!, by: run.slot }));
    await this.claimAndStart([{ run, job }], [{ job, add: { runs: 1, missed: 0, skipped: 0 } }], [], replace);
    return this.o.writer.run(run.id) ?? run;
  }

  /** claimAndStart places the runs, commits the claims, then sends the starts (not waited for). */
  private async claimAndStart(runs: { run: RunRecord; job: JobRecord }[], moves: CursorMove[], events: EventInput[], replace: { run: RunRecord; by: string }[]): Promise<void> {
    const now = this.o.now();
    const byPlan = new Map<string, { run: RunRecord; job: JobRecord }[]>();
    for (const x of runs) byPlan.set(x.job.plan, [...(byPlan.get(x.job.plan) ?? []), x]);
    for (const [plan, list] of byPlan) {
      let placements: RunPlacement[];
      try {
        placements = placeRuns(await this.o.agents.view(plan), list);
      } catch (err) {
        placements = list.map(({ run }) => ({ run: run.id, reason: (err as Error).message }));
      }
      for (const [i, p] of placements.entries()) {
        const x = list[i]!;
        if (p.agent !== undefined) x.run = { ...x.run, agent: p.agent, task: runTaskName(x.run, 1) };
        else x.run = { ...x.run, state: 'waiting', reason: 'reason' in p ? p.reason : 'no agent fits', retryAt: new Date(now + 1000).toISOString() };
      }
    }
    for (const { run, job } of runs) {
      events.push(jobEvent(job, 'job-run-scheduled', run.agent ? `${run.id}: scheduled on ${run.agent}` : `${run.id}: waiting: ${run.reason}`, { run }));
    }
    await this.o.writer.claim(runs.map((x) => x.run), moves, events);
    for (const { run, by } of replace) void this.o.watcher.stopRun(run, `replaced by the run of ${by}`, 'stopped');
    for (const { run, job } of runs) if (run.agent) this.start(run, job);
  }

  /** start sends a claimed run's start to its agent; the answer is recorded (coalesced). */
  start(run: RunRecord, job: JobRecord): void {
    const agent = run.agent!;
    let limit = this.limits.get(agent);
    if (!limit) this.limits.set(agent, (limit = pLimit(START_CONCURRENCY)));
    this.inflight.add(run.id);
    const p = limit(async () => {
      // a start that waited behind others past its deadline is not sent: its slot is missed, not run late
      if (this.o.watcher.missedIfLate(run, job, this)) {
        this.inflight.delete(run.id);
        return;
      }
      const sentAt = this.o.now();
      try {
        const exec = await this.o.agents.executor(job.plan, agent);
        // the deadline goes with the start: a start held up in the agent's own queue past it is refused there
        const deadline = run.attempt === 1 ? this.o.watcher.startDeadline(run, job, this) : undefined;
        const spec = runSpecOf(run, job);
        if (deadline !== undefined) spec.notAfter = deadline + (exec.clockOffsetMs ?? 0);
        const status = await exec.run(spec);
        this.o.observe?.({ run: run.id, dispatchMs: sentAt - Date.parse(run.slot), startMs: status.startedAt ? Date.parse(status.startedAt) - Date.parse(run.slot) : undefined });
        this.o.watcher.started(run.id, status, new Date(sentAt).toISOString());
      } catch (err) {
        if ((err as FactoryError).code === 'E_TOO_LATE') {
          this.o.watcher.missedAtAgent(run, job, (err as Error).message);
          return;
        }
        // the start may or may not have reached the agent: the run stays claimed and the next watch
        // pass asks the agent (the executor never starts a run task twice)
        this.o.log(`jobs: ${run.id}: start on ${agent} not confirmed: ${(err as Error).message}`);
      } finally {
        this.inflight.delete(run.id);
      }
    });
    this.starting.add(p);
    void p.finally(() => this.starting.delete(p));
  }

  /** settle waits for the starts in flight. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.starting]);
  }
}

/** activeByJob groups the runs that have not ended by job. */
function activeByJob(runs: RunRecord[]): Map<string, RunRecord[]> {
  const out = new Map<string, RunRecord[]>();
  for (const r of runs) if (!RUN_ENDED.includes(r.state)) out.set(r.job, [...(out.get(r.job) ?? []), r]);
  return out;
}

/** decideAfter is a dependent job's decision for its trigger slot (concurrency applies). */
function decideAfter(job: JobRecord, slot: number, active: RunRecord[]): SlotDecision {
  const d = decideManualRun(job.spec, active.map((r) => ({ id: r.id, slot: Date.parse(r.slot) })), false);
  const base: SlotDecision = { run: [], missed: [], skipped: [], replace: [], cursor: slot };
  if (!d.start) return { ...base, skipped: [{ slot, reason: d.reason.replace(/ \(--force.*\)$/, '') }] };
  return { ...base, run: [{ slot, catchUp: false }], replace: d.replace };
}

/** newRun is a run claimed for a slot. */
function newRun(job: JobRecord, slot: number, trigger: RunTrigger, now: number): RunRecord {
  return {
    id: runId(job.id, slot),
    job: job.id,
    plan: job.plan,
    project: job.project,
    slot: slotId(slot),
    trigger,
    state: 'claimed',
    attempt: 1,
    claimedAt: new Date(now).toISOString(),
    attempts: [],
  };
}

/** runSpecOf is the executor spec of a run's current attempt: a run-once task labelled with its run. */
export function runSpecOf(run: RunRecord, job: JobRecord): TaskRunSpec {
  const s = job.spec;
  return {
    task: run.task!,
    driver: s.driver,
    specHash: runSpecHash(job),
    command: s.command ?? [],
    env: {
      ...s.env,
      FACTORY_JOB: job.name,
      FACTORY_RUN: run.id,
      FACTORY_SLOT: run.slot,
      FACTORY_ATTEMPT: String(run.attempt),
      FACTORY_PLAN: job.plan,
      FACTORY_PROJECT: job.project,
      FACTORY_AGENT: run.agent ?? '',
    },
    workingDir: s.workingDir,
    resources: s.resources,
    labels: { plan: job.plan, group: job.name, project: job.project, run: run.id },
    stopGraceMs: s.stopGraceMs,
    image: s.image,
    restart: 'never',
    once: true,
  };
}
