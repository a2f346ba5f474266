/**
 * Small state documents for the dashboard's tests: two IDCs, three agents (one lost, one draining),
 * process, docker and VM tasks in several states, and a few events; with jobs, four scheduled jobs
 * and their runs; with deployments, three deployments and a crash-looping task.
 */
import type { DeploymentRecord } from '../../src/deploy/types.js';
import { JOB_DEFAULTS, type JobRecord, type JobSpec, type RunRecord } from '../../src/jobs/types.js';
import type { GroupSpec, UpdatePolicy } from '../../src/spec/model.js';
import type { StateData, TaskRecord } from '../../src/state/types.js';
import type { DeploymentTableRecords } from '../../src/tui/deployments-model.js';
import type { JobTableRecords } from '../../src/tui/jobs-model.js';

const GiB = 1024 ** 3;

/** task builds a task record with defaults. */
export function task(id: string, agent: string, over: Partial<TaskRecord> & { power?: string; health?: string } = {}): TaskRecord {
  const [plan, group] = id.split('/') as [string, string];
  return {
    task: id, plan, group, project: 'acme', agent, driver: 'process', specHash: 'h1', state: 'running',
    resources: { cpus: 1, mem: 2 * GiB, disk: 0, gpus: 0, scalars: {}, ports: [] },
    pid: 4242, updatedAt: '2026-01-01T00:00:00.000Z', ...over,
  } as TaskRecord;
}

/** sampleState is the dashboard tests' state document. */
export function sampleState(): StateData {
  const agent = (name: string, idc: string, cluster: string, state: 'ready' | 'lost', extra: object = {}) => ({
    name, idc, cluster, state,
    resources: { cpus: 8, mem: 16 * GiB, disk: 100 * GiB, gpus: name === 'h1' ? 2 : 0, scalars: {} },
    attributes: { rack: `r-${name}` }, drivers: ['process' as const, 'docker' as const, 'libvirt' as const],
    lastSeen: '2026-01-01T00:00:00.000Z', ...extra,
  });
  return {
    version: 1,
    agents: {
      h1: agent('h1', 'bj1', 'bj1-a', 'ready'),
      h2: agent('h2', 'bj1', 'bj1-a', 'ready', { draining: true }),
      h3: agent('h3', 'sh2', 'sh2-a', 'lost', { error: 'connect ECONNREFUSED' }),
    },
    tasks: {
      'web/api/0': task('web/api/0', 'h1', { driver: 'docker', health: 'healthy', pid: undefined }),
      'web/api/1': task('web/api/1', 'h2', { driver: 'docker', health: 'unhealthy', pid: undefined }),
      'web/api/10': task('web/api/10', 'h1', { driver: 'docker', health: 'healthy', pid: undefined }),
      'web/api/2': task('web/api/2', 'h1', { state: 'failed', exitCode: 3, pid: undefined, driver: 'docker' }),
      'farm/render/0': task('farm/render/0', 'h1', { driver: 'libvirt', power: 'running', pid: undefined, resources: { cpus: 4, mem: 8 * GiB, disk: 0, gpus: 1, scalars: {}, ports: [] } }),
      'batch/tick/0': task('batch/tick/0', 'h3', { state: 'lost', pid: undefined }),
    },
    plans: {},
    events: [
      { rev: 1, topic: 'plan', at: '2026-01-01T00:00:00.000Z', kind: 'plan-applied', message: 'applied web: 4 changes' },
      { rev: 2, topic: 'task', at: '2026-01-01T00:00:01.000Z', kind: 'task-failed', task: 'web/api/2', agent: 'h1', message: 'web/api/2 failed on h1 (exit code 3)' },
      { rev: 3, topic: 'agent', at: '2026-01-01T00:00:02.000Z', kind: 'agent-lost', agent: 'h3', message: 'agent h3 unreachable: connect ECONNREFUSED' },
    ],
  };
}

/** job builds a job record (schedule, or `after` when over.spec names it) of project acme. */
function job(id: string, spec: Partial<JobSpec>, over: Partial<JobRecord> = {}): JobRecord {
  const [plan, name] = id.split('/') as [string, string];
  return {
    id, plan, name, project: 'acme', createdAt: '2025-12-01T00:00:00.000Z', updatedAt: '2025-12-01T00:00:00.000Z', suspended: false,
    spec: { ...JOB_DEFAULTS, history: { ...JOB_DEFAULTS.history }, name, driver: 'process', command: ['true'], env: {}, resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], stopGraceMs: 1000, line: 1, col: 1, ...spec },
    ...over,
  };
}

/** run builds a run record of a job for a slot. */
export function jobRun(jobId: string, slot: string, over: Partial<RunRecord> = {}): RunRecord {
  return { id: `${jobId}/${slot}`, job: jobId, plan: jobId.split('/')[0]!, project: 'acme', slot, trigger: 'schedule', state: 'succeeded', attempt: 1, claimedAt: slot, attempts: [], ...over };
}

/**
 * sampleJobTables are the job tables of the tests' state: etl/nightly (its last run failed, runs
 * kept), etl/report (after nightly, never run), web/backup (suspended), web/tick (a run going).
 */
export function sampleJobTables(): JobTableRecords {
  const counts = (succeeded: number, failed: number, missed: number, skipped: number) => ({ runs: succeeded + failed, succeeded, failed, missed, skipped });
  const runs = [
    jobRun('etl/nightly', '2026-01-01T01:00:00.000Z', { state: 'failed', attempt: 2, agent: 'h1', exitCode: 3, reason: 'exit code 3' }),
    jobRun('etl/nightly', '2025-12-31T01:00:00.000Z', { agent: 'h2', exitCode: 0 }),
    jobRun('etl/nightly', '2025-12-30T01:00:00.000Z', { state: 'missed', reason: 'no agent fits: cpus' }),
    jobRun('web/tick', '2026-01-01T00:00:29.000Z', { state: 'running', agent: 'h1' }),
  ];
  return {
    jobs: {
      'etl/nightly': job('etl/nightly', { schedule: '0 2 * * *', timeZone: 'Europe/Paris' }),
      'etl/report': job('etl/report', { after: ['nightly'] }),
      'web/backup': job('web/backup', { schedule: '*/15 * * * *' }, { suspended: true, suspendedBy: 'local:ops' }),
      'web/tick': job('web/tick', { schedule: '* * * * * *' }),
    },
    cursors: {
      'etl/nightly': { id: 'etl/nightly', cursor: '2026-01-01T01:00:00.000Z', next: '2026-01-02T01:00:00.000Z', lastRun: { id: runs[0]!.id, slot: runs[0]!.slot, state: 'failed', exitCode: 3 }, counts: counts(5, 1, 1, 2) },
      'web/backup': { id: 'web/backup', cursor: '2026-01-01T00:00:00.000Z', next: '2026-01-01T00:15:00.000Z', lastRun: { id: 'web/backup/2025-12-31T23:45:00.000Z', slot: '2025-12-31T23:45:00.000Z', state: 'succeeded', exitCode: 0 }, counts: counts(10, 0, 0, 3) },
      'web/tick': { id: 'web/tick', cursor: '2026-01-01T00:00:29.000Z', next: '2026-01-01T00:00:30.000Z', counts: counts(29, 0, 0, 0) },
    },
    runs: Object.fromEntries(runs.map((r) => [r.id, r])),
  };
}

/** sampleStateWithJobs is sampleState with the job tables. */
export function sampleStateWithJobs(): StateData & JobTableRecords {
  return { ...sampleState(), ...sampleJobTables() };
}

/** POLICY is an update policy: 2 at a time, 1 extra, healthy for 1 s. */
const POLICY: UpdatePolicy = { maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 1000, healthyDeadlineMs: 20_000, progressDeadlineMs: 60_000, autoRevert: false, canary: 0, autoPromote: false };

/** deployment builds a deployment record of plan/group (project acme) rolling `count` tasks from h1 to h2. */
export function deployment(id: string, planGroup: string, count: number, over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  const [plan, group] = planGroup.split('/') as [string, string];
  return {
    id, plan, group, project: 'acme', fromHash: 'h1', toHash: 'h2', toSpec: { name: group, count } as GroupSpec, policy: POLICY, status: 'running', promoted: true,
    tasks: [], old: count, createdAt: '2026-01-01T00:00:10.000Z', updatedAt: '2026-01-01T00:00:10.000Z', progressAt: '2026-01-01T00:00:10.000Z', ...over,
  };
}

/**
 * sampleDeployments are the deployments of the tests' state: web/api rolling (1 new healthy, 1
 * starting, 3 old), farm/render's canary healthy and waiting for promotion (the newest), and an older
 * batch/tick one that failed and was reverted.
 */
export function sampleDeployments(): Required<DeploymentTableRecords> {
  const list = [
    deployment('dep-0a0a0a0a0a', 'web/api', 4, {
      old: 3, by: 'local:ops',
      tasks: [
        { task: 'web/api/4', state: 'healthy', startedAt: '2026-01-01T00:00:11.000Z', healthyAt: '2026-01-01T00:00:13.000Z' },
        { task: 'web/api/0', state: 'pending', startedAt: '2026-01-01T00:00:14.000Z' },
      ],
    }),
    deployment('dep-0b0b0b0b0b', 'farm/render', 1, {
      status: 'waiting-promotion', promoted: false, old: 1, createdAt: '2026-01-01T00:00:20.000Z', policy: { ...POLICY, canary: 1 },
      message: 'canaries healthy: waiting for promotion',
      tasks: [{ task: 'farm/render/1', state: 'healthy', startedAt: '2026-01-01T00:00:21.000Z', healthyAt: '2026-01-01T00:00:23.000Z', canary: true }],
    }),
    deployment('dep-0c0c0c0c0c', 'batch/tick', 1, {
      status: 'reverted', old: 0, createdAt: '2025-12-31T23:00:00.000Z', finishedAt: '2025-12-31T23:01:00.000Z', revertedBy: 'dep-0d0d0d0d0d',
      message: 'batch/tick/0 unhealthy: 3 failed checks',
      tasks: [{ task: 'batch/tick/0', state: 'failed', startedAt: '2025-12-31T23:00:01.000Z', error: 'unhealthy: 3 failed checks' }],
    }),
  ];
  return { deployments: Object.fromEntries(list.map((d) => [d.id, d])) };
}

/** CRASHY is a crash-looping task of the deployments state: exited after 3 restarts, its 4th due at 00:00:34Z. */
export const CRASHY = task('web/crash/0', 'h1', {
  state: 'exited', exitCode: 1, pid: undefined,
  backoff: { restarts: 3, since: '2026-01-01T00:00:00.000Z', lastRestartAt: '2026-01-01T00:00:26.000Z', diedAt: '2026-01-01T00:00:30.000Z', delayMs: 4000, nextAt: '2026-01-01T00:00:34.000Z' },
});

/** sampleStateWithDeployments is sampleState with the deployments, a crash-looping task and a running task that restarted twice. */
export function sampleStateWithDeployments(): StateData & DeploymentTableRecords {
  const s = sampleState();
  s.tasks[CRASHY.task] = CRASHY;
  s.tasks['web/api/0']!.backoff = { restarts: 2, since: '2026-01-01T00:00:00.000Z', lastRestartAt: '2026-01-01T00:00:25.000Z' };
  s.events.push({ rev: 4, topic: 'deployment', at: '2026-01-01T00:00:20.000Z', kind: 'deployment-started', deployment: 'dep-0b0b0b0b0b', plan: 'farm', message: 'rolling farm/render: 1 of 1 task from h1 to h2 (canary)' });
  return { ...s, ...sampleDeployments() };
}
