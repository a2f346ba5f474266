/**
 * The exit codes a script or a CI job can trust (documented in each command's --help and the README):
 *   0 done · 1 error · 2 changes present (`plan diff --detailed-exitcode`) ·
 *   3 some task could not be placed or failed to start (`plan apply`; `plan diff --detailed-exitcode`).
 */
import type { ApplyResult, DiffResult } from '../control/plan.js';

/** EXIT is the table of exit codes. */
export const EXIT = { ok: 0, error: 1, changes: 2, incomplete: 3 } as const;

/** EXIT_CODES_HELP is the line the commands' --help shows. */
export const EXIT_CODES_HELP = 'Exit codes: 0 done, 1 error, 2 changes present (diff --detailed-exitcode), 3 some task unplaced or failed to start.';

/** applyExitCode is `plan apply`'s exit: 3 when a task is unplaced or an executor call failed, else 0. */
export function applyExitCode(r: Pick<ApplyResult, 'ok' | 'unplaced'>): number {
  return !r.ok || r.unplaced.length > 0 ? EXIT.incomplete : EXIT.ok;
}

/** diffExitCode is `plan diff --detailed-exitcode`'s exit: 3 unplaced, 2 changes, 0 nothing to do. */
export function diffExitCode(r: Pick<DiffResult, 'changes' | 'unplaced'>): number {
  if (r.unplaced.length > 0) return EXIT.incomplete;
  const c = r.changes;
  return c.create + c.update + c.destroy > 0 ? EXIT.changes : EXIT.ok;
}
