/**
 * JobsLister keeps a control host's jobs and their runs for ApiStateSource: GET /v1/jobs, then
 * GET /v1/jobs/:plan/:job/runs only for the jobs that may have changed (named by a `job` event since
 * the last listing, new, or whose view differs), or for every job after a reset or a reconnect. A
 * host without job routes (an older release) has no jobs: it is not asked again.
 */
import type { ApiClient, CallOptions } from '../client/http.js';
import type { FactoryError } from '../errors.js';
import type { RunRecord } from '../jobs/types.js';
import type { EventRecord } from '../state/types.js';
import { NO_JOBS, type JobsData, type JobView } from './jobs-model.js';

/** RUNS_IN_FLIGHT bounds the runs listings sent at once. */
const RUNS_IN_FLIGHT = 4;

/** jobPath is a job's path under /v1/jobs (each segment encoded). */
export function jobPath(id: string): string {
  return `/v1/jobs/${id.split('/').map(encodeURIComponent).join('/')}`;
}

function codeOf(err: unknown): string | undefined {
  return (err as FactoryError | undefined)?.code;
}

/** JobsLister lists a control host's jobs and the runs of those that changed. */
export class JobsLister {
  private data: JobsData = NO_JOBS;
  /** views are the last listing's views as JSON, by job id (a different view: its runs are listed again). */
  private views = new Map<string, string>();
  /** named are the jobs that job events named since the last listing. */
  private named = new Set<string>();
  /** everything lists every job's runs next time (first listing, reset, reconnect). */
  private everything = true;
  /** listedRev is the revision of the last listing: job events at or before it changed nothing it missed. */
  private listedRev = -1;
  private unsupported = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: ApiClient) {}

  /** current is the last listing (none before the first). */
  current(): JobsData {
    return this.data;
  }

  /** note takes an event from the stream; true when it is a job event newer than the listing (list the jobs again). */
  note(e: EventRecord): boolean {
    if (e.topic !== 'job' || this.unsupported || e.rev <= this.listedRev) return false;
    if (e.job) this.named.add(e.job);
    return true;
  }

  /** invalidate makes the next listing ask for every job's runs (events may have been missed). */
  invalidate(): void {
    this.everything = true;
  }

  /** list lists the jobs and the runs of those that changed; one listing at a time. */
  list(call: CallOptions): Promise<JobsData> {
    const next = this.queue.then(
      () => this.listOnce(call),
      () => this.listOnce(call),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async listOnce(call: CallOptions): Promise<JobsData> {
    if (this.unsupported) return this.data;
    const named = this.named;
    const everything = this.everything;
    this.named = new Set();
    this.everything = false;
    try {
      let answer: { rev: number; jobs: JobView[] };
      try {
        answer = await this.client.getJson<{ rev: number; jobs: JobView[] }>('/v1/jobs', call);
      } catch (err) {
        if (codeOf(err) !== 'E_NOT_FOUND') throw err;
        this.unsupported = true;
        return (this.data = NO_JOBS);
      }
      const views = new Map(answer.jobs.map((v) => [v.id, JSON.stringify(v)]));
      const runs: Record<string, RunRecord[]> = {};
      const stale: string[] = [];
      for (const [id, view] of views) {
        const kept = this.data.runs[id];
        if (kept && !everything && !named.has(id) && this.views.get(id) === view) runs[id] = kept;
        else stale.push(id);
      }
      for (let i = 0; i < stale.length; i += RUNS_IN_FLIGHT) {
        await Promise.all(
          stale.slice(i, i + RUNS_IN_FLIGHT).map(async (id) => {
            try {
              runs[id] = (await this.client.getJson<{ runs: RunRecord[] }>(`${jobPath(id)}/runs`, call)).runs;
            } catch (err) {
              // removed since the listing: the next listing drops it
              if (codeOf(err) !== 'E_JOB_UNKNOWN') throw err;
            }
          }),
        );
      }
      this.views = views;
      this.listedRev = answer.rev;
      return (this.data = { jobs: answer.jobs, runs });
    } catch (err) {
      // not listed: ask again next time
      for (const id of named) this.named.add(id);
      this.everything ||= everything;
      throw err;
    }
  }
}
