/** Job specs and records the jobs unit tests build from: a per-second `true` with the defaults. */
import { JOB_DEFAULTS, type JobRecord, type JobSpec } from '../../src/jobs/types.js';

/** jobSpec is a per-second process job running `true` (0.01 cpu, 1 MiB), with the spec defaults and `over`. */
export function jobSpec(name: string, over: Partial<JobSpec> = {}): JobSpec {
  return {
    ...JOB_DEFAULTS,
    history: { ...JOB_DEFAULTS.history },
    name,
    schedule: '* * * * * *',
    driver: 'process',
    command: ['true'],
    env: {},
    resources: { cpus: 0.01, mem: 1 << 20, disk: 0, gpus: 0, scalars: {}, ports: [] },
    constraints: [],
    stopGraceMs: 1000,
    line: 1,
    col: 1,
    ...over,
  };
}

/** jobRecord is the record of a job `<plan>/<name>` (project default, created at `at`), with `over`. */
export function jobRecord(id: string, spec: Partial<JobSpec> = {}, over: Partial<JobRecord> = {}, at = ''): JobRecord {
  const [plan, name] = id.split('/') as [string, string];
  return { id, plan, name, project: 'default', createdAt: at, updatedAt: at, suspended: false, spec: jobSpec(name, spec), ...over };
}
