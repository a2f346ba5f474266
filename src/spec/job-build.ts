/**
 * Jobs of a plan: the checks that span several keys or jobs (schedule or after, what runs, names
 * that `after` refers to, cycles, names shared with groups), each at its key's position, and the
 * JobSpec each job becomes, defaults applied.
 */
import type { JobSpec } from '../jobs/types.js';
import { JOB_DEFAULTS } from '../jobs/types.js';
import { DEFAULT_STOP_GRACE_MS, taskResources } from './plan-build.js';
import type { RawPlan } from './schema.js';
import type { SpecSource } from './source.js';

/** RawJob is one job as the schema validated it. */
export type RawJob = NonNullable<RawPlan['jobs']>[number];

/** checkJobs reports what no single key's schema can: each issue at the key it is about. */
export function checkJobs(src: SpecSource, jobs: RawJob[], groupNames: Set<string>): void {
  const names = new Set(jobs.map((j) => j.name));
  jobs.forEach((j, i) => {
    const at = ['jobs', i];
    if (j.schedule === undefined && j.after === undefined) src.issue([...at], `job '${j.name}' needs a schedule (cron or ISO 8601 interval) or after: [jobs it follows]`);
    if (j.schedule !== undefined && j.after !== undefined) src.issue([...at, 'after'], 'use either schedule or after, not both (a job run after others has no schedule of its own)');
    if (j.command === undefined && j.image === undefined) src.issue([...at], `job '${j.name}' needs a command (a process), or an image (a container)`);
    if (groupNames.has(j.name)) src.issue([...at, 'name'], `job name '${j.name}' is also a group of this plan: give the job another name`);
    (j.after ?? []).forEach((p, k) => {
      if (p === j.name) src.issue([...at, 'after', k], `job '${j.name}' cannot run after itself`);
      else if (!names.has(p)) src.issue([...at, 'after', k], `no job '${p}' in this plan`);
    });
  });
  // a cycle of after: nothing in it could ever run
  const after = new Map(jobs.map((j) => [j.name, j.after ?? []]));
  const state = new Map<string, 'open' | 'done'>();
  const cycleFrom = (n: string, path: string[]): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'open');
    for (const p of after.get(n) ?? []) {
      if (!after.has(p) || p === n) continue;
      const c = cycleFrom(p, [...path, n]);
      if (c) return c;
    }
    state.set(n, 'done');
    return undefined;
  };
  for (const [i, j] of jobs.entries()) {
    const c = cycleFrom(j.name, []);
    if (c) {
      src.issue(['jobs', i, 'after'], `jobs run after each other in a cycle: ${c.join(' → ')}`);
      break;
    }
  }
}

/** buildJob is the JobSpec of a validated job. */
export function buildJob(src: SpecSource, i: number, j: RawJob): JobSpec {
  const pos = src.positionOf(['jobs', i]);
  const resources = taskResources(j.resources, 'process');
  return {
    name: j.name,
    ...(j.schedule !== undefined ? { schedule: j.schedule.trim() } : {}),
    timeZone: j.timeZone ?? JOB_DEFAULTS.timeZone,
    ...(j.after ? { after: j.after } : {}),
    driver: j.image !== undefined ? 'docker' : 'process',
    ...(j.command ? { command: j.command } : {}),
    ...(j.image !== undefined ? { image: j.image } : {}),
    env: j.env,
    ...(j.workingDir !== undefined ? { workingDir: j.workingDir } : {}),
    resources,
    constraints: j.constraints,
    ...(j.timeout !== undefined ? { timeoutMs: j.timeout } : {}),
    concurrency: j.concurrency ?? JOB_DEFAULTS.concurrency,
    ...(j.startingDeadline !== undefined ? { startingDeadlineMs: j.startingDeadline } : {}),
    retries: j.retries ?? JOB_DEFAULTS.retries,
    backoffMs: j.backoff ?? JOB_DEFAULTS.backoffMs,
    backoffMaxMs: j.backoffMax ?? JOB_DEFAULTS.backoffMaxMs,
    history: { succeeded: j.history?.succeeded ?? JOB_DEFAULTS.history.succeeded, failed: j.history?.failed ?? JOB_DEFAULTS.history.failed },
    suspend: j.suspend ?? JOB_DEFAULTS.suspend,
    catchUp: j.catchUp ?? JOB_DEFAULTS.catchUp,
    catchUpMax: j.catchUpMax ?? JOB_DEFAULTS.catchUpMax,
    stopGraceMs: j.stopGrace ?? DEFAULT_STOP_GRACE_MS,
    line: pos.line,
    col: pos.col,
  };
}
