/**
 * What a task's restart backoff looks like from outside (`factory status`, the dashboard): whether it
 * is crash-looping, its restarts and its next restart. Pure, and nothing but types is imported, so
 * the dashboard's state worker (src/tui/model-core.ts) uses it as `status` does; the rule that
 * spaces the restarts is restart-backoff.ts.
 */
import type { TaskState } from '../scheduler/types.js';
import type { TaskRecord } from '../state/types.js';

/** DEATHS are the task states the backoff spaces restarts of (not `stopped`: someone stopped it; not `lost`: its agent's fault). */
export const DEATHS: ReadonlySet<TaskState> = new Set<TaskState>(['exited', 'failed', 'finished', 'unknown']);

/** isCrashLoop says whether a task is crash-looping: dead again after a restart of its loop. */
export function isCrashLoop(t: Pick<TaskRecord, 'state' | 'backoff'>): boolean {
  return DEATHS.has(t.state) && (t.backoff?.restarts ?? 0) >= 1;
}

/** BackoffView is what is shown of a task's restart backoff (the fields `status --json` adds to a task). */
export interface BackoffView {
  /** restarts counts the restarts of the task's current crash loop (absent: none since it last stayed up). */
  restarts?: number;
  /** crashLoop is set on a task that died again after a restart of its loop: its restarts wait for the backoff. */
  crashLoop?: boolean;
  /** nextRestartAt is when a crash-looping task's next restart is due (absent until a pass noted its death). */
  nextRestartAt?: string;
  /** backoffMs is the wait of its current step (the restart is due backoffMs after it died). */
  backoffMs?: number;
}

/** backoffView is what is shown of a task's restart backoff: its count, and for a crash-looping task its next restart. */
export function backoffView(t: Pick<TaskRecord, 'state' | 'backoff'>): BackoffView {
  const b = t.backoff;
  if (!b || b.restarts < 1) return {};
  if (!isCrashLoop(t)) return { restarts: b.restarts };
  return { restarts: b.restarts, crashLoop: true, ...(b.nextAt ? { nextRestartAt: b.nextAt } : {}), ...(b.delayMs !== undefined ? { backoffMs: b.delayMs } : {}) };
}
