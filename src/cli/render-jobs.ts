/** How `factory jobs list` and `jobs history` print jobs and runs. */
import type { JobView } from '../control/jobs.js';
import type { RunRecord } from '../jobs/types.js';
import { table } from './render.js';

/** renderJobs is the jobs table: schedule, next slot, last run and result, runs going, counts. */
export function renderJobs(jobs: JobView[]): string {
  if (jobs.length === 0) return 'No jobs (apply a plan with a jobs: section; they run on the control host).';
  return table(
    ['JOB', 'SCHEDULE', 'NEXT', 'LAST RUN', 'RESULT', 'GOING', 'RUNS (ok/failed/missed/skipped)'],
    jobs.map((j) => [
      j.id,
      j.schedule ? `${j.schedule}${j.timeZone !== 'UTC' ? ` ${j.timeZone}` : ''}` : `after ${j.after?.join(', ')}`,
      j.suspended ? 'suspended' : (j.next ?? '-'),
      j.lastRun?.slot ?? '-',
      j.lastRun ? `${j.lastRun.state}${j.lastRun.exitCode !== undefined && j.lastRun.state !== 'succeeded' ? ` (${j.lastRun.exitCode})` : ''}` : '-',
      String(j.running),
      `${j.counts.succeeded}/${j.counts.failed}/${j.counts.missed}/${j.counts.skipped}`,
    ]),
  );
}

/** renderRuns is a job's runs, newest first: slot, state, attempts, agent, times, why. */
export function renderRuns(job: string, runs: RunRecord[]): string {
  if (runs.length === 0) return `No runs of ${job} kept.`;
  return table(
    ['SLOT', 'TRIGGER', 'STATE', 'ATTEMPT', 'AGENT', 'STARTED', 'FINISHED', 'EXIT', 'REASON'],
    runs.map((r) => [r.slot, r.trigger, r.state, String(r.attempt), r.agent ?? '-', r.startedAt ?? '-', r.finishedAt ?? '-', r.exitCode !== undefined ? String(r.exitCode) : r.signal ?? '-', r.reason ?? '']),
  );
}
