/**
 * Operations on one deployment, by id (or a unique prefix of it): finding it, promoting its canaries,
 * and the operator's pause, resume, abort and revert (operator.ts), each written with its event.
 */
import { withStateWork } from '../control/state-handle.js';
import { FactoryError } from '../errors.js';
import type { EventRecord, StateBackend, StateView } from '../state/backend.js';
import { promote } from './engine.js';
import { abortRecord, checkOperable, pauseRecord, resumeRecord, type OperatorAction } from './operator.js';
import { startRevert } from './pass.js';
import { newestFirst, type DeploymentRecord } from './types.js';

/** findDeployment resolves a deployment id (or a unique prefix of at least 5 characters) among those a caller may see. */
export function findDeployment(view: StateView, id: string, project?: string): DeploymentRecord {
  const visible = (d: DeploymentRecord) => project === undefined || d.project === project;
  const exact = view.get('deployments', id);
  if (exact && visible(exact)) return exact;
  // a prefix of the hex alone (as the API's id pattern and the commands' help say) or of the whole id
  const prefix = id.startsWith('dep-') ? id : `dep-${id}`;
  const matches = id.length >= 5 ? view.list('deployments').filter((d) => d.id.startsWith(prefix) && visible(d)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new FactoryError(`deployment id '${id}' is ambiguous: ${matches.map((d) => d.id).join(', ')}`, { code: 'E_DEPLOYMENT_UNKNOWN', hint: 'give more of the id' });
  throw new FactoryError(`no deployment '${id}'`, { code: 'E_DEPLOYMENT_UNKNOWN', hint: 'plan apply prints the id of the deployment it starts' });
}

/** DEPLOYMENT_EVENTS is how many of a deployment's events (the newest) `deploy status` shows. */
export const DEPLOYMENT_EVENTS = 50;

/** deploymentEvents are a deployment's kept events (those naming it), oldest first, the newest `limit`. */
export function deploymentEvents(backend: Pick<StateBackend, 'eventsSince'>, id: string, limit = DEPLOYMENT_EVENTS): EventRecord[] {
  return backend.eventsSince(0, (e) => e.deployment === id).events.slice(-limit);
}

/** listDeployments lists the deployments a caller may see, newest first (of one plan when given). */
export function listDeployments(view: StateView, opts: { project?: string; plan?: string } = {}): DeploymentRecord[] {
  return view
    .list('deployments')
    .filter((d) => (opts.project === undefined || d.project === opts.project) && (opts.plan === undefined || d.plan === opts.plan))
    .sort(newestFirst);
}

/** promoteDeployment promotes a deployment's canaries: the rollout of the rest goes on at its next step. */
export async function promoteDeployment(stateDir: string, id: string, by: string | undefined, project?: string): Promise<DeploymentRecord> {
  return withStateWork(stateDir, { purpose: 'deploy promote' }, by, async (work, state) => {
    const d = findDeployment(state.view(), id, project);
    if (d.promoted) {
      if (d.status === 'running' || d.status === 'succeeded') return d;
      throw new FactoryError(`deployment ${d.id} is ${d.status}: there is nothing to promote`, { code: 'E_DEPLOYMENT_STATE' });
    }
    if (d.status !== 'running' && d.status !== 'waiting-promotion' && d.status !== 'paused') {
      throw new FactoryError(`deployment ${d.id} is ${d.status}: it can no longer be promoted`, { code: 'E_DEPLOYMENT_STATE' });
    }
    const next = promote(d, Date.now(), by);
    work.deployments.put(next);
    work.event({ topic: 'deployment', kind: 'deployment-promoted', deployment: d.id, plan: d.plan, project: d.project, message: `${d.plan}/${d.group} (${d.id}): canaries promoted${by ? ` by ${by}` : ''}${d.status === 'waiting-promotion' ? '' : ' (before they all counted healthy)'}` });
    return next;
  });
}

/**
 * operateDeployment pauses, resumes, aborts or reverts a deployment (see operator.ts) and writes the
 * event of it (`deployment-paused`, `-resumed`, `-aborted`, `-reverted` with the revert's
 * `deployment-started`), stamped with who asked. A revert is the engine's: a deployment of its own
 * (revertOf) rolls the group back to the previous spec, which is recorded as the plan's again.
 */
export async function operateDeployment(stateDir: string, id: string, action: OperatorAction, by: string | undefined, project?: string): Promise<DeploymentRecord> {
  return withStateWork(stateDir, { purpose: `deploy ${action}` }, by, async (work, state) => {
    const d = findDeployment(state.view(), id, project);
    const now = Date.now();
    const who = by ? ` by ${by}` : '';
    const key = `${d.plan}/${d.group} (${d.id})`;
    const event = (rec: DeploymentRecord, kind: string, message: string) => work.event({ topic: 'deployment', kind, deployment: rec.id, plan: rec.plan, project: rec.project, message });
    if (action === 'revert') {
      checkOperable(d, 'revert');
      const plan = work.plans.get(d.plan)?.spec;
      if (!plan || !plan.groups.some((g) => g.name === d.group)) {
        throw new FactoryError(`deployment ${d.id}: plan ${d.plan} has no recorded group ${d.group} to revert`, { code: 'E_DEPLOYMENT_STATE' });
      }
      const iso = new Date(now).toISOString();
      const { revert } = startRevert(work, plan, d, iso, { by, message: `reverted${who}: rolling back to ${d.fromHash}` });
      event(d, 'deployment-reverted', `${key}: reverted${who}; ${revert.id} rolls it back to ${d.fromHash}`);
      event(revert, 'deployment-started', `reverting ${d.plan}/${d.group} to ${revert.toHash} (${d.id} reverted${who})`);
      return work.deployments.get(d.id)!;
    }
    const next = action === 'pause' ? pauseRecord(d, now, by) : action === 'resume' ? resumeRecord(d, now, by) : abortRecord(d, now, by);
    work.deployments.put(next);
    const said = action === 'pause' ? 'paused: no new batch starts' : action === 'resume' ? 'resumed' : `aborted: ${d.old} task${d.old === 1 ? '' : 's'} left on the old spec`;
    event(next, `deployment-${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'aborted'}`, `${key}: ${said}${who}`);
    return next;
  });
}
