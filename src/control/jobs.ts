/**
 * The operations on scheduled jobs that commands and the API share: list them with where their
 * schedule stands, a job's runs, suspend and resume, and a run's output. Starting a run now is the
 * control host's scheduler of runs' (src/jobs/runner.ts): a one-shot command schedules nothing.
 */
import { FactoryError } from '../errors.js';
import type { JobRecord, RunRecord } from '../jobs/types.js';
import { resolveJobName, RUN_ENDED } from '../jobs/types.js';
import { jobViewsOf, type JobView } from '../jobs/view.js';
import { resolveInventory } from '../spec/index.js';
import type { StateBackend, StateView } from '../state/backend.js';
import { AgentPool } from './agents.js';
import { stateOf, withStateWork } from './state-handle.js';

export type { JobView } from '../jobs/view.js';

/** jobViews lists the jobs (of one project, when given), by id. */
export function jobViews(view: StateView, project?: string): JobView[] {
  const jobs = view.list('jobs').filter((j) => project === undefined || j.project === project);
  return jobViewsOf(jobs, (id) => view.get('cursors', id), view.list('runs'));
}

/**
 * findJob resolves a job argument: `plan/job`, or a job name no other plan uses. A caller limited to
 * one project sees only its jobs.
 */
export function findJob(view: StateView, name: string, project?: string): JobRecord {
  return resolveJobName(view.list('jobs').filter((j) => project === undefined || j.project === project), name);
}

/** jobRuns lists a job's runs (kept history and runs going), newest first. */
export function jobRuns(view: StateView, job: JobRecord): RunRecord[] {
  return view
    .list('runs')
    .filter((r) => r.job === job.id)
    .sort((a, b) => b.slot.localeCompare(a.slot));
}

/**
 * findRun resolves a run argument: a run id `plan/job/slot`, or a job (`plan/job` or its name) for
 * its newest run.
 */
export function findRun(view: StateView, name: string, project?: string): RunRecord {
  const exact = view.get('runs', name);
  if (exact && (project === undefined || exact.project === project)) return exact;
  const job = findJob(view, name, project);
  const [newest] = jobRuns(view, job);
  if (!newest) throw new FactoryError(`job ${job.id} has no runs kept`, { code: 'E_RUN_UNKNOWN' });
  return newest;
}

/** setSuspended suspends or resumes a job (recorded on the job; the plan's next apply sets it from `suspend:` again). */
export async function setSuspended(stateDir: string, name: string, suspend: boolean, by: string | undefined, project?: string): Promise<JobView> {
  return withStateWork(stateDir, { purpose: suspend ? 'jobs suspend' : 'jobs resume' }, by, async (work, state) => {
    const job = findJob(state.view(), name, project);
    if (job.suspended !== suspend) {
      work.jobs.put({ ...job, suspended: suspend, ...(suspend && by ? { suspendedBy: by } : { suspendedBy: undefined }), updatedAt: new Date().toISOString() });
      work.event({ topic: 'job', kind: suspend ? 'job-suspended' : 'job-resumed', job: job.id, plan: job.plan, project: job.project, message: `${job.id} ${suspend ? 'suspended' : 'resumed'}${by ? ` by ${by}` : ''}` });
    }
    await work.flush();
    return jobViews(state.view()).find((v) => v.id === job.id)!;
  });
}

/** RunLogsOptions name a run and how to stream its output. */
export interface RunLogsOptions {
  stateDir: string;
  inventoryPath?: string;
  run: string;
  follow: boolean;
  tail?: number;
  stream: 'stdout' | 'stderr' | 'both';
  onData: (stream: 'stdout' | 'stderr', chunk: string) => void;
  signal?: AbortSignal;
  project?: string;
}

/** runLogs streams the output of a run's current attempt from its agent (kept there until the run leaves the history). */
export async function runLogs(opts: RunLogsOptions): Promise<void> {
  const state: StateBackend & { dir: string } = await stateOf(opts.stateDir);
  const run = findRun(state.view(), opts.run, opts.project);
  if (!run.agent || !run.task) throw new FactoryError(`run ${run.id} never started (${run.state}${run.reason ? `: ${run.reason}` : ''})`, { code: 'E_RUN_NOT_STARTED' });
  const plan = state.view().get('plans', run.plan);
  const inventory = await resolveInventory(plan?.inventory ?? opts.inventoryPath);
  const spec = inventory.agents.find((a) => a.name === run.agent);
  if (!spec) throw new FactoryError(`run ${run.id} ran on agent ${run.agent}, which is not in the inventory ${inventory.file}`, { code: 'E_AGENT_UNKNOWN' });
  const pool = await AgentPool.connect([spec], { stateDir: state.dir, stateId: state.id, settings: inventory.settings });
  try {
    const conn = pool.connected.get(spec.name);
    if (!conn) throw new FactoryError(`agent ${spec.name}: unreachable: ${pool.failed.get(spec.name)?.error ?? 'unknown error'}`, { code: 'E_AGENT_UNREACHABLE' });
    // a run that ended has nothing more to follow
    const follow = opts.follow && !RUN_ENDED.includes(run.state);
    await conn.client.logs(run.task, { stream: opts.stream, follow, tail: opts.tail }, opts.onData, opts.signal);
  } finally {
    await pool.close();
  }
}
