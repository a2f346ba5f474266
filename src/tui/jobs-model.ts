/**
 * The jobs view's data: the scheduled jobs as their views (src/jobs/view.ts) and each job's kept runs,
 * newest first. A state file's tables become this in the state worker (JobTables); a control host
 * lists it (api-jobs.ts). Also the filter and the one-line outcomes of the job actions. No React.
 */
import type { JobCursor, JobRecord, RunRecord } from '../jobs/types.js';
import { jobViewsOf, type JobView } from '../jobs/view.js';
import { matchingEveryWord } from './search.js';

export type { JobView } from '../jobs/view.js';

/** JobsData are the jobs the dashboard shows and their runs (by job id, newest first), from one state version. */
export interface JobsData {
  jobs: JobView[];
  runs: Record<string, RunRecord[]>;
}

/** NO_JOBS is a state without jobs. */
export const NO_JOBS: JobsData = Object.freeze({ jobs: [], runs: {} }) as JobsData;

/** JobTableRecords are the job tables of a state document (absent in states written before jobs). */
export interface JobTableRecords {
  jobs?: Record<string, JobRecord>;
  cursors?: Record<string, JobCursor>;
  runs?: Record<string, RunRecord>;
}

/** JOB_TABLES names the state's job tables, as a state document keys them. */
export const JOB_TABLES = ['jobs', 'cursors', 'runs'] as const;

/** JobTableName is one of the job tables. */
export type JobTableName = (typeof JOB_TABLES)[number];

/** isJobTable tells whether a state document's key is a job table. */
export function isJobTable(key: string): key is JobTableName {
  return (JOB_TABLES as readonly string[]).includes(key);
}

/** newestFirst orders a job's runs as `jobs history` does: by slot, newest first. */
function newestFirst(a: RunRecord, b: RunRecord): number {
  return b.slot.localeCompare(a.slot);
}

/** jobsOfTables builds the jobs view's data from a state's job tables. */
export function jobsOfTables(t: JobTableRecords): JobsData {
  const runs = Object.values(t.runs ?? {});
  if (!t.jobs && runs.length === 0) return NO_JOBS;
  const jobs = jobViewsOf(Object.values(t.jobs ?? {}), (id) => t.cursors?.[id], runs);
  const byJob: Record<string, RunRecord[]> = {};
  for (const r of runs) (byJob[r.job] ??= []).push(r);
  for (const list of Object.values(byJob)) list.sort(newestFirst);
  return { jobs, runs: byJob };
}

/**
 * JobTables collects a state's job tables record by record (a repeated key replaces the earlier
 * record, as JSON.parse does), for a reader that never holds the whole document.
 */
export class JobTables {
  private readonly t = { jobs: {} as Record<string, JobRecord>, cursors: {} as Record<string, JobCursor>, runs: {} as Record<string, RunRecord> };

  /** add records one member of a job table. */
  add(table: JobTableName, key: string, rec: unknown): void {
    (this.t[table] as Record<string, unknown>)[key] = rec;
  }

  /** finish returns the jobs view's data. */
  finish(): JobsData {
    return jobsOfTables(this.t);
  }
}

/** jobSearch is the lowercased text the jobs filter matches: id, project, schedule, last result, `suspended`. */
function jobSearch(j: JobView): string {
  return [j.id, j.project, j.schedule ?? `after ${j.after?.join(' ') ?? ''}`, j.timeZone, j.lastRun?.state ?? '', j.suspended ? 'suspended' : '', j.running ? 'going' : ''].join(' ').toLowerCase();
}

/** jobsMatching returns the jobs whose search text holds every word of the query (the list itself when there is none). */
export function jobsMatching(jobs: JobView[], query: string): JobView[] {
  return matchingEveryWord(jobs, query, jobSearch);
}

/** JobsTotals are the header's job counts: jobs, those with runs going, those suspended. */
export interface JobsTotals {
  jobs: number;
  going: number;
  suspended: number;
}

/** jobsTotals counts the jobs for the header. */
export function jobsTotals(jobs: JobView[]): JobsTotals {
  let going = 0;
  let suspended = 0;
  for (const j of jobs) {
    if (j.running) going++;
    if (j.suspended) suspended++;
  }
  return { jobs: jobs.length, going, suspended };
}

/** slotText shows a slot (or any UTC ISO time) briefly: `2026-01-02 01:00:00Z` (milliseconds dropped). */
export function slotText(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** runNowOutcome is the status line after a run now: where it started, or why it waits (as `jobs run` says). */
export function runNowOutcome(run: Pick<RunRecord, 'id' | 'agent' | 'reason'>): string {
  return `${run.id}: ${run.agent ? `started on ${run.agent}` : `waiting: ${run.reason ?? ''}`}`;
}

/** suspendOutcome is the status line after a suspend or resume (as `jobs suspend|resume` say). */
export function suspendOutcome(job: Pick<JobView, 'id' | 'suspended' | 'next'>): string {
  return `${job.id} ${job.suspended ? 'suspended' : `resumed${job.next ? `; next slot ${job.next}` : ''}`}`;
}
