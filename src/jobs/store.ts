/**
 * How the scheduler of runs writes the state: from the control host's background, next to the
 * requests it serves. Its transactions touch only job cursors and runs (never what plan apply
 * writes), and each claim is guarded so a slot's run is recorded once.
 */
import { FactoryError } from '../errors.js';
import type { EventInput, StateBackend, StateTxn } from '../state/backend.js';
import type { JobCounts, JobCursor, JobRecord, RunRecord } from './types.js';

/**
 * commitShared commits a transaction of the host's background work. While a request of this process
 * holds the writers' lock (an apply that takes seconds), the commit goes in beside its commits
 * rather than waiting for the apply to end; otherwise it takes the lock for this one commit.
 */
export async function commitShared(state: StateBackend, txn: StateTxn): Promise<number> {
  if (state.locked) {
    try {
      return await state.commit(txn);
    } catch (err) {
      if ((err as FactoryError).code !== 'E_STATE_UNLOCKED') throw err;
      // the holder let go between the check and the commit: take the lock below
    }
  }
  await state.lock({ purpose: 'job runs (control host)', onWait: () => undefined });
  try {
    return await state.commit(txn);
  } finally {
    await state.unlock();
  }
}

/** ZERO_COUNTS are a new job's counts. */
export const ZERO_COUNTS: JobCounts = { runs: 0, succeeded: 0, failed: 0, missed: 0, skipped: 0 };

/** newCursor is the cursor of a job seen for the first time: its slots start after it was applied. */
export function newCursor(job: JobRecord): JobCursor {
  return { id: job.id, cursor: job.createdAt, counts: { ...ZERO_COUNTS } };
}

/** JobEventInput is a job event before the writer adds its job fields. */
export type JobEventKind =
  | 'job-run-scheduled'
  | 'job-run-started'
  | 'job-run-succeeded'
  | 'job-run-failed'
  | 'job-run-retried'
  | 'job-run-stopped'
  | 'job-run-adopted'
  | 'job-slot-missed'
  | 'job-slot-skipped';

/** jobEvent is an event about a job (and its run or slot), stamped with the job's plan and project. */
export function jobEvent(job: Pick<JobRecord, 'id' | 'plan' | 'project'>, kind: JobEventKind, message: string, extra: { run?: RunRecord; slot?: string; agent?: string } = {}): EventInput {
  return {
    topic: 'job',
    kind,
    message,
    job: job.id,
    plan: job.plan,
    project: job.project,
    by: 'control-host',
    ...(extra.run ? { run: extra.run.id, slot: extra.run.slot } : {}),
    ...(extra.slot ? { slot: extra.slot } : {}),
    ...(extra.agent ?? extra.run?.agent ? { agent: extra.agent ?? extra.run?.agent } : {}),
  };
}
