/**
 * The deployment engine: one step of a deployment, decided from what its group's tasks look like now.
 * Pure (no clock, no I/O): the time comes in, the decision goes out, and src/deploy/pass.ts carries
 * it out through the scheduler. It is level-based, like Marathon's TaskReplaceActor and Nomad's
 * deployment watcher: every step looks at every task again, so a step lost with a control host
 * is taken again by the next one, and a task that died meanwhile is simply seen dead.
 *
 * Vocabulary. N is the group's count. Old tasks run another spec hash than the deployment's `toHash`,
 * new tasks run it. A new task counts healthy (its record's state `healthy`) once it was healthy — its
 * health check passing where the group has one, else running (a VM: power running, not paused) — for
 * `minHealthyTime` without a break;
 * it fails when it dies, turns unhealthy, or has not counted healthy `healthyDeadline` after it
 * started. Extra slots are the task indices N … N+E-1 (E = max(maxSurge, canary)): new tasks started
 * beside the old ones, stopped again once every index below N runs the new spec.
 *
 * Rules, in order:
 * 1. Progress: each new task's record is brought up to date (healthy since, counted, failed); a new
 *    task found dead that started before the deployment (a failed deployment's, tried again) is not
 *    held against it: the scheduler restarts it, and the restarted one counts. A new start breaks
 *    the healthy streak; a task its own runtime restarted in place (a container under Docker's
 *    restart policy: `restarts` grew since the step first saw it) died, even if it runs again now.
 * 2. A failed new task fails the deployment (autoRevert: the caller starts the revert); so does the
 *    progress deadline passing with no new task counted healthy (not while paused or waiting).
 * 3. Canaries (canary C > 0, not yet promoted): the C first extra slots start at once; once all
 *    count healthy, autoPromote promotes them, else the deployment waits for promotion. No old task
 *    is replaced before the promotion.
 * 4. Rolling: in flight are the new tasks started but not yet counted. Extra slots start while old
 *    tasks remain and fewer than maxParallel are in flight. Old tasks are replaced in place (same
 *    index: stopped, then started on the new spec) while fewer than maxParallel are in flight, dead
 *    ones first, then unhealthy ones, then healthy ones by index; replacing a healthy one must leave
 *    at least N − U healthy tasks, where U = maxParallel when maxSurge is 0 (the batch stops first:
 *    capacity dips by up to maxParallel, as Nomad does) and 0 otherwise (capacity never dips below
 *    N, so at most min(maxParallel, extra slots) are in flight, as Marathon's maximumOverCapacity).
 *    An everyAgent group (one task per agent) has no extra slots: U = maxParallel.
 * 5. Done: no old task left and every index below N counted healthy: the extra slots are stopped,
 *    and the deployment succeeds once none is left.
 * 6. Paused, or waiting for promotion: nothing new starts and nothing old is replaced; what runs stays.
 */
import type { DeploymentRecord, DeploymentTask } from './types.js';
import type { TaskHealth } from '../protocol/messages.js';
import type { TaskState } from '../scheduler/types.js';

/** GroupTask is one task of the deployment's group as the step sees it (from the state, just observed). */
export interface GroupTask {
  task: string;
  /** index is the task id's index (`plan/group/<index>`). */
  index: number;
  specHash: string;
  state: TaskState;
  health?: TaskHealth;
  /** power is a VM's power state (absent for other tasks): a VM is healthy only while its power is running, not paused. */
  power?: string;
  /** startedAt is when its agent says it started (ISO), when known. */
  startedAt?: string;
  error?: string;
  /** restarts counts its in-place restarts by its own runtime (docker's restart policy), when its driver has any. */
  restarts?: number;
}

/** StepInput is everything one step needs. */
export interface StepInput {
  deployment: DeploymentRecord;
  /** count is the group's count now (N; for an everyAgent group, its tasks). */
  count: number;
  /** everyAgent groups have no extra slots (one task per agent). */
  everyAgent?: boolean;
  /** hasHealthCheck: the group's health check decides health; without one, running is healthy. */
  hasHealthCheck: boolean;
  tasks: GroupTask[];
  now: number;
}

/** StepEvent is something the step says happened (a deployment event). */
export interface StepEvent {
  kind: 'deployment-promoted' | 'deployment-waiting' | 'deployment-succeeded' | 'deployment-failed' | 'deployment-task-healthy' | 'deployment-task-failed';
  message: string;
  task?: string;
}

/** StepDecision is what the step decided: the record as it now stands, and how to present the group to the scheduler. */
export interface StepDecision {
  deployment: DeploymentRecord;
  /** changed says whether the record differs from the input's (only then is it written). */
  changed: boolean;
  /** extra is how many extra slots the group has now: the scheduler sees count N + extra. */
  extra: number;
  /** replace lists the old tasks to replace now (the scheduler sees their real spec hash: an update). */
  replace: string[];
  /** revert: the deployment failed with autoRevert; the caller starts the revert. */
  revert: boolean;
  events: StepEvent[];
}

const LIVE: ReadonlySet<TaskState> = new Set<TaskState>(['running', 'pending']);

/** healthyNow says whether a task is healthy at this moment: running (a VM: powered on, not paused), and its check passing when it has one. */
export function healthyNow(t: GroupTask, hasHealthCheck: boolean): boolean {
  return t.state === 'running' && (t.power === undefined || t.power === 'running') && (!hasHealthCheck || t.health === 'healthy');
}

/** deadNow says whether a task ended (not running, not starting, not lost with its agent, not unknown). */
function deadNow(t: GroupTask): boolean {
  return !LIVE.has(t.state) && t.state !== 'lost' && t.state !== 'unknown';
}

/** extraSlots is E: how many task indices above N a deployment may use (none for everyAgent groups). */
export function extraSlots(d: DeploymentRecord, everyAgent = false): number {
  return everyAgent ? 0 : Math.max(d.policy.maxSurge, d.policy.canary);
}

/** step decides one step of a deployment (see the rules at the top of this file). */
export function step(input: StepInput): StepDecision {
  const { now, hasHealthCheck } = input;
  const iso = new Date(now).toISOString();
  const before = input.deployment;
  const d: DeploymentRecord = { ...before, tasks: before.tasks.map((t) => ({ ...t })) };
  const events: StepEvent[] = [];
  const N = input.count;
  const E = extraSlots(d, input.everyAgent);
  const { maxParallel: P, maxSurge: S } = d.policy;

  // 1. progress of each new task
  const { fresh, old, newlyFailed, byTask } = trackProgress(d, input.tasks, N, hasHealthCheck, now, events);

  const decision = (extra: number, replace: string[], revert = false): StepDecision => {
    const changed = JSON.stringify(d) !== JSON.stringify(before);
    if (changed) d.updatedAt = iso;
    return { deployment: changed ? d : before, changed, extra, replace, revert, events };
  };
  // extra slots in use: new tasks from index N on (an old task there is simply above the count: it goes)
  const existingExtra = (): number => {
    let k = 0;
    while (k < E && fresh.some((t) => t.index === N + k)) k++;
    return k;
  };

  if (d.status === 'succeeded' || d.status === 'reverted') return decision(0, []);
  if (d.status === 'failed' || d.status === 'aborted') return decision(0, []);

  // 2. failure
  const failed = failIfDue(d, newlyFailed, now, events);
  if (failed) return decision(0, [], failed.revert);

  const counted = (t: GroupTask) => byTask.get(t.task)?.state === 'healthy' && LIVE.has(t.state);
  const inFlight = fresh.filter((t) => byTask.get(t.task)?.state === 'pending').length;

  // 3. canaries
  if (!d.promoted && d.policy.canary > 0 && !input.everyAgent) {
    const C = Math.min(d.policy.canary, E);
    const canaries = fresh.filter((t) => t.index >= N && t.index < N + C);
    if (canaries.length === C && canaries.every(counted)) {
      if (d.policy.autoPromote) {
        d.promoted = true;
        d.status = 'running';
        d.message = `${C} canar${C === 1 ? 'y' : 'ies'} healthy: promoted automatically`;
        events.push({ kind: 'deployment-promoted', message: `${d.plan}/${d.group}: ${d.message}` });
      } else if (d.status !== 'waiting-promotion') {
        d.status = 'waiting-promotion';
        d.message = `${C} canar${C === 1 ? 'y' : 'ies'} healthy: waiting for promotion (factory deploy promote ${d.id})`;
        events.push({ kind: 'deployment-waiting', message: `${d.plan}/${d.group}: ${d.message}` });
        return decision(C, []);
      } else {
        return decision(C, []);
      }
    } else {
      return decision(d.status === 'running' ? C : existingExtra(), []);
    }
  }

  // 6. paused (or waiting for a promotion that came in another way): nothing new
  if (d.status !== 'running') return decision(existingExtra(), []);

  // 5. done?
  const below = (t: GroupTask) => t.index < N;
  const allNew = old.length === 0 && (input.everyAgent ? fresh.every(counted) : Array.from({ length: N }, (_, i) => i).every((i) => fresh.some((t) => t.index === i && counted(t))));
  if (allNew) {
    if (!input.tasks.some((t) => t.index >= N) || input.everyAgent) {
      d.status = 'succeeded';
      d.finishedAt = iso;
      d.message = `${N} task${N === 1 ? '' : 's'} on the new spec`;
      delete d.unplaced;
      events.push({ kind: 'deployment-succeeded', message: `${d.plan}/${d.group} rolled out: ${d.message}` });
    }
    return decision(0, []);
  }

  // 4. rolling
  let flying = inFlight;
  let extra = existingExtra();
  while (old.some(below) && extra < E && flying < P) {
    extra++;
    flying++;
  }
  const U = S > 0 && E > 0 ? 0 : P;
  let healthy = old.filter((t) => healthyNow(t, hasHealthCheck)).length + fresh.filter(counted).length;
  const rank = (t: GroupTask) => (!LIVE.has(t.state) ? 0 : !input.everyAgent && t.index >= N ? 1 : !healthyNow(t, hasHealthCheck) ? 2 : 3);
  const candidates = old.filter((t) => input.everyAgent || t.index < N + extra).sort((a, b) => rank(a) - rank(b) || a.index - b.index);
  const replace: string[] = [];
  for (const c of candidates) {
    if (flying >= P) break;
    const costs = healthyNow(c, hasHealthCheck) ? 1 : 0;
    if (costs && healthy - 1 < N - U) break;
    replace.push(c.task);
    flying++;
    healthy -= costs;
  }
  return decision(extra, replace);
}

/** Progress is rule 1's outcome: the group's tasks split into new (fresh) and old, the new ones failed at this step, each new task's record by id. */
export interface Progress {
  fresh: GroupTask[];
  old: GroupTask[];
  newlyFailed: DeploymentTask[];
  byTask: Map<string, DeploymentTask>;
}

/** trackProgress is rule 1: it brings each new task's record in `d` (a copy, changed in place) up to date and says what failed; N is the count (canaries sit above it). */
export function trackProgress(d: DeploymentRecord, tasks: readonly GroupTask[], N: number, hasHealthCheck: boolean, now: number, events: StepEvent[]): Progress {
  const iso = new Date(now).toISOString();
  const { minHealthyTimeMs, healthyDeadlineMs } = d.policy;
  const byTask = new Map(d.tasks.map((t) => [t.task, t]));
  const fresh: GroupTask[] = tasks.filter((t) => t.specHash === d.toHash);
  const old: GroupTask[] = tasks.filter((t) => t.specHash !== d.toHash);
  const newlyFailed: DeploymentTask[] = [];
  for (const t of fresh) {
    let rec = byTask.get(t.task);
    if (!rec) {
      // dead from before this deployment (a failed one's, tried again): the scheduler restarts it, then it counts
      if ((deadNow(t) || t.health === 'unhealthy') && (t.startedAt === undefined || Date.parse(t.startedAt) < Date.parse(d.createdAt))) continue;
      rec = {
        task: t.task, state: 'pending', startedAt: t.startedAt ?? iso, ...(t.restarts ? { restarts: t.restarts } : {}), ...(!d.promoted && t.index >= N ? { canary: true } : {}),
      };
      byTask.set(t.task, rec);
      d.tasks.push(rec);
    } else if (rec.state === 'pending' && t.startedAt && t.startedAt !== rec.startedAt && Date.parse(t.startedAt) > Date.parse(rec.startedAt)) {
      rec.startedAt = t.startedAt; // started again (a restart, a move): the deadline counts from the new start
      delete rec.healthySince; // and healthy for minHealthyTime means without a break
    }
    if (rec.state !== 'pending') continue;
    const restarts = t.restarts ?? 0;
    if (restarts < (rec.restarts ?? 0)) {
      // started anew (a manual restart resets the engine's count): the count from here on
      if (restarts > 0) rec.restarts = restarts;
      else delete rec.restarts;
    }
    if (deadNow(t) || t.health === 'unhealthy' || restarts > (rec.restarts ?? 0)) {
      rec.state = 'failed';
      // a driver reports an unhealthy task failed (so that supervision restarts it): say unhealthy
      rec.error =
        t.health === 'unhealthy'
          ? t.error?.startsWith('unhealthy') ? t.error : `unhealthy${t.error ? `: ${t.error}` : ''}`
          : deadNow(t) ? `${t.state}${t.error ? `: ${t.error}` : ''}`
          : `ended and was restarted in place by its runtime (restart #${restarts})${t.error ? `: ${t.error}` : ''}`;
      newlyFailed.push(rec);
      continue;
    }
    if (healthyNow(t, hasHealthCheck)) {
      rec.healthySince ??= iso;
      if (now - Date.parse(rec.healthySince) >= minHealthyTimeMs) {
        rec.state = 'healthy';
        rec.healthyAt = iso;
        d.progressAt = iso;
        events.push({ kind: 'deployment-task-healthy', task: t.task, message: `${t.task} counts healthy (${hasHealthCheck ? 'its check passed' : 'running'} for ${seconds(minHealthyTimeMs)})` });
      }
    } else if (rec.healthySince !== undefined) {
      delete rec.healthySince;
    }
    // the deadline counts from the task's start, or from the deployment's for a task that already ran
    // the target spec before it (a revert's tasks that were never replaced): those get their full
    // healthyDeadline too, not one that ran out before the deployment existed
    if (rec.state === 'pending' && now - Math.max(Date.parse(rec.startedAt), Date.parse(d.createdAt)) > healthyDeadlineMs) {
      rec.state = 'failed';
      rec.error = `not healthy for ${seconds(minHealthyTimeMs)} within ${seconds(healthyDeadlineMs)} of its start`;
      newlyFailed.push(rec);
    }
  }
  for (const f of newlyFailed) events.push({ kind: 'deployment-task-failed', task: f.task, message: `${f.task} failed: ${f.error}` });
  d.tasks.sort((a, b) => compareTask(a.task, b.task));
  d.old = old.length;
  return { fresh, old, newlyFailed, byTask };
}

/** failIfDue is rule 2: a new task failed, or the progress deadline passed (running only): `d` (a copy) is marked failed, and the result says whether to revert. */
export function failIfDue(d: DeploymentRecord, newlyFailed: readonly DeploymentTask[], now: number, events: StepEvent[]): { revert: boolean } | undefined {
  const { progressDeadlineMs } = d.policy;
  const iso = new Date(now).toISOString();
  const running = d.status === 'running';
  if (!(newlyFailed.length > 0 || (running && progressDeadlineMs > 0 && now - Date.parse(d.progressAt) > progressDeadlineMs))) return undefined;
  d.status = 'failed';
  d.finishedAt = iso;
  d.message = newlyFailed.length > 0
    ? `${newlyFailed.map((f) => `${f.task} ${f.error}`).join('; ')}`
    : `no new task counted healthy for ${seconds(progressDeadlineMs)} (progressDeadline)`;
  const revert = d.policy.autoRevert && d.fromSpec !== undefined;
  events.push({ kind: 'deployment-failed', message: `${d.plan}/${d.group} failed: ${d.message}${revert ? '; reverting to the previous spec' : d.policy.autoRevert ? ' (no previous spec to revert to)' : ''}` });
  return { revert };
}

/** promote marks a deployment's canaries promoted: the rollout goes on (deploy promote, autoPromote). */
export function promote(d: DeploymentRecord, now: number, by?: string): DeploymentRecord {
  return { ...d, promoted: true, status: d.status === 'waiting-promotion' ? 'running' : d.status, message: `promoted${by ? ` by ${by}` : ''}`, updatedAt: new Date(now).toISOString() };
}

function seconds(ms: number): string {
  return ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function compareTask(a: string, b: string): number {
  const ia = Number(a.slice(a.lastIndexOf('/') + 1));
  const ib = Number(b.slice(b.lastIndexOf('/') + 1));
  return ia - ib || (a < b ? -1 : a > b ? 1 : 0);
}
