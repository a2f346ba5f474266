/**
 * What plan apply and destroy write of a plan's jobs: the job records (spec as applied), which the
 * control host's scheduler of runs follows. A job keeps its creation time (its schedule's origin)
 * and its suspension across applies, unless the plan's own `suspend:` changed.
 */
import { jobId, type JobRecord } from '../jobs/types.js';
import type { PlanSpec } from '../spec/model.js';
import type { StateWork } from '../state/work.js';

/** JobChanges counts what an apply did to jobs. */
export interface JobChanges {
  created: string[];
  updated: string[];
  removed: string[];
}

/** recordJobs writes the plan's jobs and removes those it no longer has. */
export function recordJobs(work: StateWork, plan: PlanSpec, now: string, by?: string): JobChanges {
  const out: JobChanges = { created: [], updated: [], removed: [] };
  const keep = new Set<string>();
  for (const spec of plan.jobs ?? []) {
    const id = jobId(plan.name, spec.name);
    keep.add(id);
    const prev = work.jobs.get(id);
    const { line: _l, col: _c, ...specSansPos } = spec;
    if (prev) {
      const { line: _pl, col: _pc, ...prevSansPos } = prev.spec;
      if (JSON.stringify(prevSansPos) === JSON.stringify(specSansPos) && prev.project === plan.project) continue;
      const suspended = prev.spec.suspend !== spec.suspend ? spec.suspend : prev.suspended;
      work.jobs.put({ ...prev, project: plan.project, spec, suspended, updatedAt: now });
      out.updated.push(id);
      work.event({ topic: 'job', kind: 'job-updated', job: id, plan: plan.name, project: plan.project, message: `${id} updated${by ? ` (by ${by})` : ''}` });
      continue;
    }
    const rec: JobRecord = { id, plan: plan.name, name: spec.name, project: plan.project, spec, createdAt: now, suspended: spec.suspend, updatedAt: now };
    work.jobs.put(rec);
    out.created.push(id);
    work.event({ topic: 'job', kind: 'job-created', job: id, plan: plan.name, project: plan.project, message: `${id} created: ${spec.schedule ? `${spec.schedule}${spec.timeZone !== 'UTC' ? ` (${spec.timeZone})` : ''}` : `after ${spec.after?.join(', ')}`}` });
  }
  for (const j of work.jobs.values()) {
    if (j.plan !== plan.name || keep.has(j.id)) continue;
    work.jobs.delete(j.id);
    out.removed.push(j.id);
    work.event({ topic: 'job', kind: 'job-removed', job: j.id, plan: j.plan, project: j.project, message: `${j.id} removed (no longer in the plan); its runs going are stopped` });
  }
  return out;
}

/** forgetJobs removes the jobs of destroyed plans (the scheduler of runs stops their runs going). */
export function forgetJobs(work: StateWork, plans: string[]): string[] {
  const gone = new Set(plans);
  const removed: string[] = [];
  for (const j of work.jobs.values()) {
    if (!gone.has(j.plan)) continue;
    work.jobs.delete(j.id);
    removed.push(j.id);
    work.event({ topic: 'job', kind: 'job-removed', job: j.id, plan: j.plan, project: j.project, message: `${j.id} removed with its plan` });
  }
  return removed;
}
