/**
 * What an operator may do to a deployment in progress (`factory deploy pause|resume|abort|revert`),
 * as pure transitions of its record: the time and who comes in, the record (or a refusal) goes out.
 * actions.ts writes them; the engine (engine.ts) honours them at the next step.
 *
 * | action | from | to | effect at the next step |
 * | --- | --- | --- | --- |
 * | pause | running, waiting-promotion | paused | no new batch starts; tasks in flight finish their health gate |
 * | resume | paused | running | the rollout goes on; progressAt is now (the progress deadline does not fire at once) |
 * | abort | running, paused, waiting-promotion | aborted (final) | nothing more moves: tasks stay on the spec they run |
 * | revert | running, paused, waiting-promotion (with a previous spec) | reverted (final) | a deployment of its own (revertOf) rolls the group back: see pass.ts startRevert |
 */
import { FactoryError } from '../errors.js';
import { isActive, type DeploymentRecord } from './types.js';

/** OperatorAction is what an operator may ask of a deployment besides promote. */
export type OperatorAction = 'pause' | 'resume' | 'abort' | 'revert';

/** checkOperable throws the refusal of an action a deployment cannot take now (E_DEPLOYMENT_FINISHED, E_DEPLOYMENT_STATE, E_DEPLOYMENT_NO_PREVIOUS). */
export function checkOperable(d: DeploymentRecord, action: OperatorAction): void {
  if (!isActive(d)) {
    throw new FactoryError(`deployment ${d.id} is ${d.status}: it has finished, there is nothing to ${action}`, { code: 'E_DEPLOYMENT_FINISHED', hint: `factory deploy status ${d.id}` });
  }
  if (action === 'pause' && d.status === 'paused') throw new FactoryError(`deployment ${d.id} is paused already`, { code: 'E_DEPLOYMENT_STATE', hint: `factory deploy resume ${d.id}` });
  if (action === 'resume' && d.status !== 'paused') throw new FactoryError(`deployment ${d.id} is ${d.status}, not paused: there is nothing to resume`, { code: 'E_DEPLOYMENT_STATE' });
  if (action === 'revert' && d.fromSpec === undefined) {
    throw new FactoryError(`deployment ${d.id} has no previous spec to return to (the state had no record of the group before it)`, { code: 'E_DEPLOYMENT_NO_PREVIOUS', hint: `abort it (factory deploy abort ${d.id}) and apply the old plan` });
  }
}

/** pauseRecord is a deployment paused: nothing new starts at its next steps. */
export function pauseRecord(d: DeploymentRecord, now: number, by?: string): DeploymentRecord {
  checkOperable(d, 'pause');
  const iso = new Date(now).toISOString();
  return { ...d, status: 'paused', message: `paused${by ? ` by ${by}` : ''}`, updatedAt: iso };
}

/** resumeRecord is a paused deployment running again, its progress deadline counted from now. */
export function resumeRecord(d: DeploymentRecord, now: number, by?: string): DeploymentRecord {
  checkOperable(d, 'resume');
  const iso = new Date(now).toISOString();
  return { ...d, status: 'running', message: `resumed${by ? ` by ${by}` : ''}`, updatedAt: iso, progressAt: iso };
}

/** abortRecord is a deployment stopped where it stands (final): its tasks stay on the spec they run. */
export function abortRecord(d: DeploymentRecord, now: number, by?: string): DeploymentRecord {
  checkOperable(d, 'abort');
  const iso = new Date(now).toISOString();
  const { unplaced: _unplaced, ...rest } = d;
  return { ...rest, status: 'aborted', message: `aborted${by ? ` by ${by}` : ''}: ${d.old} task${d.old === 1 ? '' : 's'} left on the old spec`, updatedAt: iso, finishedAt: iso };
}
