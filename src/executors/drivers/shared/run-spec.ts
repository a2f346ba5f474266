/**
 * Checks of a run request before a driver acts on it. Every driver refuses a missing spec and an
 * unsafe task id the same way, then applies its own checks in order; the first that fails is the
 * E_BAD_REQUEST error `run <task>: <reason>`.
 */
import { FactoryError } from '../../../errors.js';
import type { TaskRunSpec } from '../../../protocol/messages.js';
import { taskDirName } from './task-id.js';

/** SpecCheck is one rule a driver applies to a run request: why it refuses the spec, or undefined. */
export type SpecCheck = (spec: TaskRunSpec) => string | undefined;

/** hasSpecHash refuses a spec without its specHash (what adoption compares). */
export const hasSpecHash: SpecCheck = (spec) => (typeof spec.specHash !== 'string' ? 'missing specHash' : undefined);

/**
 * checkNotTooLate throws E_TOO_LATE when a run-once start reaches its driver after its notAfter (the
 * driver calls it once it knows the task does not exist yet: an existing one is reported as it is).
 */
export function checkNotTooLate(spec: TaskRunSpec, now = Date.now()): void {
  if (spec.notAfter === undefined || now <= spec.notAfter) return;
  throw new FactoryError(`run ${spec.task}: not started: it reached the executor ${now - spec.notAfter} ms after its deadline (earlier starts held it up)`, {
    code: 'E_TOO_LATE',
    hint: 'the run is recorded missed; its next slot runs as usual',
  });
}

/** checkRunSpec throws E_BAD_REQUEST for a missing spec, E_TASK_ID for an unsafe task id, then the first failing check's reason. */
export function checkRunSpec(spec: TaskRunSpec, checks: readonly SpecCheck[]): void {
  if (!spec || typeof spec !== 'object') throw new FactoryError('run: missing spec', { code: 'E_BAD_REQUEST' });
  taskDirName(spec.task);
  for (const check of checks) {
    const reason = check(spec);
    if (reason) throw new FactoryError(`run ${spec.task}: ${reason}`, { code: 'E_BAD_REQUEST' });
  }
}
