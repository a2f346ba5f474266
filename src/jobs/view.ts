/**
 * What a job looks like to an operator (`jobs list`, GET /v1/jobs, the dashboard's jobs view): the
 * job as applied, where its schedule stands and how many of its runs are going. Pure, over records,
 * so that a reader of a state file builds the same views as the control host without loading
 * src/control.
 */
import type { JobCounts, JobCursor, JobRecord, RunRecord } from './types.js';
import { RUN_ENDED } from './types.js';

/** JobView is a job as `jobs list` and GET /v1/jobs show it. */
export interface JobView {
  id: string;
  plan: string;
  name: string;
  project: string;
  schedule?: string;
  timeZone: string;
  after?: string[];
  concurrency: string;
  suspended: boolean;
  /** next is the next slot (absent for a dependent job, a suspended one, or a schedule that ended). */
  next?: string;
  lastRun?: { id: string; slot: string; state: string; finishedAt?: string; exitCode?: number };
  /** running counts the runs not ended (claimed, running, waiting for a retry). */
  running: number;
  counts: JobCounts;
}

/** NO_COUNTS are the counts of a job whose schedule has not started. */
const NO_COUNTS: JobCounts = { runs: 0, succeeded: 0, failed: 0, missed: 0, skipped: 0 };

/**
 * jobViewsOf builds the views of jobs, by id: each with its cursor (where its schedule stands) and
 * the number of its runs not ended.
 */
export function jobViewsOf(jobs: Iterable<JobRecord>, cursorOf: (id: string) => JobCursor | undefined, runs: Iterable<RunRecord>): JobView[] {
  const going = new Map<string, number>();
  for (const r of runs) if (!RUN_ENDED.includes(r.state)) going.set(r.job, (going.get(r.job) ?? 0) + 1);
  return [...jobs]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((j) => {
      const cur = cursorOf(j.id);
      const suspended = j.suspended || j.spec.suspend;
      return {
        id: j.id,
        plan: j.plan,
        name: j.name,
        project: j.project,
        ...(j.spec.schedule ? { schedule: j.spec.schedule } : {}),
        timeZone: j.spec.timeZone,
        ...(j.spec.after ? { after: j.spec.after } : {}),
        concurrency: j.spec.concurrency,
        suspended,
        ...(cur?.next && !suspended ? { next: cur.next } : {}),
        ...(cur?.lastRun ? { lastRun: cur.lastRun } : {}),
        running: going.get(j.id) ?? 0,
        counts: cur?.counts ?? { ...NO_COUNTS },
      };
    });
}
