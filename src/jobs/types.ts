/**
 * The shapes of scheduled jobs: the job as a plan declares it (JobSpec, normalized by src/spec), and
 * what the state keeps of each job (JobRecord) and each of its runs (RunRecord).
 */
import { FactoryError } from '../errors.js';
import type { Constraint, TaskResources } from '../scheduler/types.js';
import type { CatchUp, Concurrency } from './policy.js';

/** JobSpec is one validated job of a plan, defaults applied. */
export interface JobSpec {
  name: string;
  /** schedule is a cron expression, a macro or an ISO 8601 repeating interval; absent for a job run `after` others. */
  schedule?: string;
  /** timeZone is the IANA zone the schedule is read in (default UTC). */
  timeZone: string;
  /** after names the jobs of the same plan that must all succeed (since this job's last run) to run it. */
  after?: string[];
  driver: 'process' | 'docker';
  command?: string[];
  image?: string;
  env: Record<string, string>;
  workingDir?: string;
  resources: TaskResources;
  constraints: Constraint[];
  /** timeoutMs stops a run that takes longer; the run counts as failed. */
  timeoutMs?: number;
  concurrency: Concurrency;
  startingDeadlineMs?: number;
  retries: number;
  backoffMs: number;
  backoffMaxMs: number;
  history: { succeeded: number; failed: number };
  suspend: boolean;
  catchUp: CatchUp;
  catchUpMax: number;
  stopGraceMs: number;
  /** line and col of the job in its file, for messages. */
  line: number;
  col: number;
}

/** RunState is where a run is: claimed (slot taken, start not yet confirmed), running, waiting for a retry, or ended. */
export type RunState = 'claimed' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'stopped' | 'missed';

/** RUN_ENDED are the states of a run that is over. */
export const RUN_ENDED: readonly RunState[] = ['succeeded', 'failed', 'stopped', 'missed'];

/** RunTrigger says why a run exists. */
export type RunTrigger = 'schedule' | 'catch-up' | 'manual' | 'after';

/** RunAttempt is one attempt of a run that ended (the run's current attempt is on the run itself). */
export interface RunAttempt {
  attempt: number;
  agent: string;
  task: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: string;
  reason?: string;
}

/** RunRecord is one run of a job: its id is `<plan>/<job>/<slot>` (the slot as a UTC ISO time). */
export interface RunRecord {
  id: string;
  /** job is the job's id, `<plan>/<job>`. */
  job: string;
  plan: string;
  project: string;
  slot: string;
  trigger: RunTrigger;
  state: RunState;
  /** attempt is the current attempt, from 1. */
  attempt: number;
  /** agent and task name where the current attempt was placed (set when the slot is claimed). */
  agent?: string;
  task?: string;
  pid?: number;
  claimedAt: string;
  /** dispatchedAt is when the start of the current attempt was sent to its agent. */
  dispatchedAt?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: string;
  /** reason says why a run failed, stopped or was missed (timeout, replaced, start failed: …). */
  reason?: string;
  /** retryAt is when a waiting run tries again. */
  retryAt?: string;
  /** attempts are the earlier attempts, oldest first. */
  attempts: RunAttempt[];
  /** by is who asked for a manual run. */
  by?: string;
}

/** JobCounts are a job's lifetime counts of slots by outcome (every slot lands in exactly one). */
export interface JobCounts {
  runs: number;
  succeeded: number;
  failed: number;
  missed: number;
  skipped: number;
}

/**
 * JobRecord is a job as applied: written by plan apply and destroy and by `jobs suspend|resume`,
 * never by the scheduler of runs (which writes JobCursor), so the two never overwrite each other.
 */
export interface JobRecord {
  /** id is `<plan>/<job>`. */
  id: string;
  plan: string;
  name: string;
  project: string;
  spec: JobSpec;
  createdAt: string;
  /** suspended: the plan's `suspend`, or `factory jobs suspend|resume` since. */
  suspended: boolean;
  suspendedBy?: string;
  updatedAt: string;
}

/** JobCursor is where a job's schedule stands: written only by the control host's scheduler of runs. */
export interface JobCursor {
  /** id is the job's id. */
  id: string;
  /** cursor: every slot at or before it is accounted for (run, missed or skipped). */
  cursor: string;
  /** next is the next slot, as last computed. */
  next?: string;
  lastRun?: { id: string; slot: string; state: RunState; finishedAt?: string; exitCode?: number };
  /** lastSuccessAt is when the job's last successful run finished (what dependents wait for). */
  lastSuccessAt?: string;
  counts: JobCounts;
}

/** jobId is the id of a job of a plan. */
export function jobId(plan: string, name: string): string {
  return `${plan}/${name}`;
}

/** runId is the identity of a job's run for a slot: `<plan>/<job>/<slot>`. */
export function runId(job: string, slot: number): string {
  return `${job}/${new Date(slot).toISOString()}`;
}

/**
 * runTaskName is the executor task name of one attempt of a run: `<plan>/<job>/r<slot>-<attempt>`
 * with the slot compact (20261201T020000.000Z): never a plan task's numeric index, and one attempt
 * never reuses another's task folder.
 */
export function runTaskName(run: Pick<RunRecord, 'job' | 'slot'>, attempt: number): string {
  const compact = run.slot.replace(/[-:]/g, '');
  return `${run.job}/r${compact}-${attempt}`;
}

/** JOB_DEFAULTS are the settings a job gets when its plan does not say. */
export const JOB_DEFAULTS = {
  timeZone: 'UTC',
  concurrency: 'allow',
  retries: 0,
  backoffMs: 10_000,
  backoffMaxMs: 5 * 60_000,
  history: { succeeded: 3, failed: 5 },
  suspend: false,
  catchUp: 'none',
  catchUpMax: 10,
} as const satisfies Partial<JobSpec>;

/**
 * resolveJobName finds a job argument among jobs: `plan/job`, or a job name no other plan uses. It
 * throws E_JOB_AMBIGUOUS or E_JOB_UNKNOWN (with the jobs there are) otherwise.
 */
export function resolveJobName<J extends { id: string; name: string }>(jobs: J[], name: string): J {
  const exact = jobs.find((j) => j.id === name);
  if (exact) return exact;
  const named = jobs.filter((j) => j.name === name);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    throw new FactoryError(`job name '${name}' is ambiguous: ${named.map((j) => j.id).join(', ')}`, { code: 'E_JOB_AMBIGUOUS', hint: 'name it as plan/job' });
  }
  throw new FactoryError(`no job '${name}' in the applied plans`, { code: 'E_JOB_UNKNOWN', hint: jobs.length ? `jobs: ${jobs.map((j) => j.id).slice(0, 10).join(', ')}` : 'apply a plan with a jobs: section first' });
}
