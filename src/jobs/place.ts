/**
 * placeRuns places new runs with the scheduler, like any task: DRF across projects, quotas, pinned
 * clusters, constraints and the capacity left by what runs (plan tasks and the runs still going).
 */
import { createHash } from 'node:crypto';
import { schedule } from '../scheduler/index.js';
import type { DesiredGroup } from '../scheduler/types.js';
import type { PlacementView } from './agents.js';
import type { JobRecord, RunRecord } from './types.js';

/** NEW_RUNS is the scheduler's plan name for the runs being placed (never a real plan: names cannot hold '#'). */
const NEW_RUNS = '#runs';

/** RunPlacement is where a run goes, or why it cannot go anywhere now. */
export type RunPlacement = { run: string; agent: string } | { run: string; agent?: undefined; reason: string };

/** runSpecHash is the hash a run's task carries (what would make it another task). */
export function runSpecHash(job: JobRecord): string {
  const s = job.spec;
  return createHash('sha256')
    .update(JSON.stringify([s.driver, s.command, s.image, s.env, s.workingDir, s.resources]))
    .digest('hex')
    .slice(0, 16);
}

/**
 * placeRuns decides an agent for each run (all of one plan's inventory), in one scheduler pass. The
 * view's actual tasks include the runs still going (snapshotOf counts them), so their resources are held.
 */
export function placeRuns(view: PlacementView, runs: { run: RunRecord; job: JobRecord }[], seed = 1): RunPlacement[] {
  if (runs.length === 0) return [];
  const groups: DesiredGroup[] = runs.map(({ run, job }) => ({
    plan: NEW_RUNS,
    group: run.id,
    project: job.project,
    kind: job.spec.driver === 'docker' ? 'container' : 'process',
    driver: job.spec.driver,
    count: 1,
    everyAgent: false,
    resources: job.spec.resources,
    constraints: job.spec.constraints,
    specHash: runSpecHash(job),
    strategy: 'binpack',
    restart: 'never',
    ...(view.placement ? { placement: view.placement } : {}),
  }));
  const plan = schedule({ agents: view.agents, groups, actual: view.actual, plans: [NEW_RUNS], seed, projects: view.projects });
  const out: RunPlacement[] = [];
  const placed = new Map(plan.create.map((p) => [p.group, p.agent]));
  const unplaced = new Map(plan.unplaced.map((u) => [u.group, u.reason]));
  for (const { run } of runs) {
    const agent = placed.get(run.id);
    out.push(agent ? { run: run.id, agent } : { run: run.id, reason: unplaced.get(run.id) ?? 'no agent fits' });
  }
  return out;
}
