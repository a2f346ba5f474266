/**
 * Restart backoff: a task that dies again and again is restarted later and later (issue 14;
 * Marathon's backoffSeconds / backoffFactor / maxLaunchDelaySeconds, Kubernetes' CrashLoopBackOff).
 *
 * The rule, per task, with the group's `restartBackoff: {initial, factor, max}`:
 * - the first death of a loop is restarted at once (as before: a one-off crash costs nothing);
 * - after n restarts in the loop, the next death waits min(max, initial × factor^(n-1)) from the
 *   moment it died: 1s, 2s, 4s … 5m with the defaults;
 * - the loop is over when the task stays up for max(10 s, 2 × the wait its next death would get)
 *   (10 s for the first steps, 10 min at the 5 m cap): the count goes back to 0. A changed spec
 *   (an update: a new task) starts with no loop; re-applying the same spec changes nothing.
 *
 * Where the task stands is kept in its state record (`TaskRecord.backoff`), so a new control host
 * goes on at the same step. The scheduler has no clock: the control side notes each death here and
 * marks a task whose restart is not due yet (`ActualTask.restartHeld`); the scheduler keeps it.
 * Events: in a loop, one `task-crash-loop` per death (with the count and the next restart time)
 * stands for the death, restart and reconcile events each death used to add.
 */
import type { PlanSpec, RestartBackoffSpec } from '../spec/model.js';
import { DEFAULT_RESTART_BACKOFF } from '../spec/plan-build.js';
import { formatDuration } from '../spec/units.js';
import type { RestartBackoffRecord, TaskRecord } from '../state/types.js';
import type { StateWork } from '../state/work.js';
import { DEATHS } from './crash-loop.js';
import { specHashOf } from './desired.js';

// isCrashLoop moved to crash-loop.ts (pure: the dashboard's state worker uses it too)
export { isCrashLoop } from './crash-loop.js';

/** STABLE_MIN_MS is the least time a task must stay up for its crash loop to be over: 10 s. */
export const STABLE_MIN_MS = 10_000;


/** policyOf is a group's restart backoff, the defaults for a plan recorded before groups had one. */
export function policyOf(g: { restartBackoff?: RestartBackoffSpec }): RestartBackoffSpec {
  return g.restartBackoff ?? DEFAULT_RESTART_BACKOFF;
}

/** backoffDelayMs is the wait before restarting a task that died after `restarts` restarts in its loop: 0, then initial × factor^(n-1), at most max. */
export function backoffDelayMs(policy: RestartBackoffSpec, restarts: number): number {
  if (restarts <= 0 || policy.initialMs <= 0) return 0;
  return Math.round(Math.min(policy.maxMs, policy.initialMs * policy.factor ** (restarts - 1)));
}

/** stableAfterMs is how long a task with `restarts` restarts in its loop must stay up for the loop to be over. */
export function stableAfterMs(policy: RestartBackoffSpec, restarts: number): number {
  return Math.max(STABLE_MIN_MS, 2 * backoffDelayMs(policy, restarts));
}

function timeOf(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * noteDeath is the backoff of a task that just died, from the last one (undefined: no loop yet), the
 * run that ended (its agent's startedAt / finishedAt) and the time now. The death is dated by
 * finishedAt when it is plausible (not before the start, not in the future), else by now; a run that
 * was up long enough ends the loop before this death counts.
 */
export function noteDeath(prev: RestartBackoffRecord | undefined, policy: RestartBackoffSpec, run: { startedAt?: string; finishedAt?: string }, now: number): RestartBackoffRecord {
  const started = timeOf(run.startedAt);
  const finished = timeOf(run.finishedAt);
  const died = finished !== undefined && finished <= now && (started === undefined || finished >= started) ? finished : now;
  const stable = prev !== undefined && started !== undefined && died - started >= stableAfterMs(policy, prev.restarts);
  const loop = prev && !stable ? prev : undefined;
  const restarts = loop?.restarts ?? 0;
  const delayMs = backoffDelayMs(policy, restarts);
  return {
    restarts,
    since: loop?.since ?? new Date(died).toISOString(),
    ...(loop?.lastRestartAt ? { lastRestartAt: loop.lastRestartAt } : {}),
    diedAt: new Date(died).toISOString(),
    delayMs,
    nextAt: new Date(died + delayMs).toISOString(),
  };
}

/** noteRestart is the backoff of a task the control side has just restarted after a noted death. */
export function noteRestart(prev: RestartBackoffRecord, now: string): RestartBackoffRecord {
  return { restarts: prev.restarts + 1, since: prev.since, lastRestartAt: now };
}

/** isStable says whether a live task has stayed up long enough for its crash loop to be over. */
export function isStable(b: RestartBackoffRecord, policy: RestartBackoffSpec, startedAt: string | undefined, now: number): boolean {
  const started = timeOf(startedAt) ?? timeOf(b.lastRestartAt);
  return started !== undefined && now - started >= stableAfterMs(policy, b.restarts);
}

function howItEnded(t: TaskRecord): string {
  if (t.signal) return `killed by ${t.signal}`;
  if (t.exitCode !== undefined) return `exit code ${t.exitCode}`;
  if (t.error) return t.error.split(/\r?\n/)[0] ?? t.state;
  return t.state;
}

/** BackoffNotes is what a pass learnt: the tasks whose restart waits, each with the time it is due. */
export type BackoffNotes = Map<string, string>;

/**
 * noteBackoffs runs before a pass schedules (supervision or apply): for every task of the plans in
 * scope, a new death is noted (and, in a loop, told by one `task-crash-loop` event), a task that
 * stayed up long enough leaves its loop, and the tasks whose restart is not due yet are returned.
 * A task whose spec changed is left alone: its update starts a new task with no loop.
 */
export function noteBackoffs(work: StateWork, plans: PlanSpec[], now: number): BackoffNotes {
  const groups = new Map<string, { plan: PlanSpec; g: PlanSpec['groups'][number]; specHash: string }>();
  for (const plan of plans) for (const g of plan.groups) groups.set(`${plan.name}/${g.name}`, { plan, g, specHash: specHashOf(plan, g) });
  const held: BackoffNotes = new Map();
  const at = new Date(now).toISOString();
  for (const t of work.tasks.values()) {
    const found = groups.get(`${t.plan}/${t.group}`);
    if (!found || found.specHash !== t.specHash) continue;
    const policy = policyOf(found.g);
    if (t.state === 'running' || t.state === 'pending') {
      if (!t.backoff || t.backoff.nextAt !== undefined || !isStable(t.backoff, policy, t.startedAt, now)) continue;
      const { backoff, ...rest } = t;
      work.tasks.put({ ...rest, updatedAt: at });
      if (backoff.restarts >= 2) {
        work.event({ at, kind: 'task-backoff-reset', task: t.task, agent: t.agent, message: `${t.task} stayed up on ${t.agent} after ${backoff.restarts} restarts: its crash loop is over` });
      }
      continue;
    }
    if (!DEATHS.has(t.state)) continue;
    const policyName = found.g.restart;
    if (policyName === 'never' || (policyName === 'on-failure' && t.state === 'finished')) continue;
    let b = t.backoff;
    if (b?.nextAt === undefined) {
      b = noteDeath(b, policy, t, now);
      work.tasks.put({ ...t, backoff: b, updatedAt: at });
      if (b.restarts >= 1) {
        work.event({
          at,
          kind: 'task-crash-loop',
          task: t.task,
          agent: t.agent,
          message: `${t.task} crash loop on ${t.agent}: died again (${howItEnded(t)}) after ${b.restarts} restart${b.restarts === 1 ? '' : 's'} since ${b.since}; restart ${b.restarts + 1} at ${b.nextAt} (backoff ${formatDuration(b.delayMs ?? 0)})`,
        });
      } else if ((t.backoff?.restarts ?? 0) >= 1) {
        // it was up long enough that its loop was over before this death: told as a plain death
        work.event({ at, kind: `task-${t.state}`, task: t.task, agent: t.agent, message: `${t.task} ${t.state} on ${t.agent} (${howItEnded(t)}) after staying up: restarted at once` });
      }
    }
    if (b.nextAt !== undefined && (timeOf(b.nextAt) ?? 0) > now) held.set(t.task, b.nextAt);
  }
  return held;
}
