/**
 * Operations on one deployment, by id (or a unique prefix of it): finding it, and promoting its
 * canaries. The rest of `factory deploy` (pause, resume, revert, abort) is to come.
 */
import { withStateWork } from '../control/state-handle.js';
import { FactoryError } from '../errors.js';
import type { StateView } from '../state/backend.js';
import { promote } from './engine.js';
import type { DeploymentRecord } from './types.js';

/** findDeployment resolves a deployment id (or a unique prefix of at least 5 characters) among those a caller may see. */
export function findDeployment(view: StateView, id: string, project?: string): DeploymentRecord {
  const visible = (d: DeploymentRecord) => project === undefined || d.project === project;
  const exact = view.get('deployments', id);
  if (exact && visible(exact)) return exact;
  const matches = id.length >= 5 ? view.list('deployments').filter((d) => d.id.startsWith(id) && visible(d)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new FactoryError(`deployment id '${id}' is ambiguous: ${matches.map((d) => d.id).join(', ')}`, { code: 'E_DEPLOYMENT_UNKNOWN', hint: 'give more of the id' });
  throw new FactoryError(`no deployment '${id}'`, { code: 'E_DEPLOYMENT_UNKNOWN', hint: 'plan apply prints the id of the deployment it starts' });
}

/** listDeployments lists the deployments a caller may see, newest first (of one plan when given). */
export function listDeployments(view: StateView, opts: { project?: string; plan?: string } = {}): DeploymentRecord[] {
  return view
    .list('deployments')
    .filter((d) => (opts.project === undefined || d.project === opts.project) && (opts.plan === undefined || d.plan === opts.plan))
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
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
