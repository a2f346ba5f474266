/** /v1/deployments: the rollouts of changed groups (src/deploy): list, one, promote its canaries, pause, resume, abort, revert. */
import * as z from 'zod';
import { callerOf, ctxOf } from '../auth.js';
import { errorResponses, errorSchema, idHeaders, nameParam } from '../schemas.js';
import { READ, WRITE, type ApiRoutes } from './context.js';
import type { OperatorAction } from '../../deploy/operator.js';

/** OPERATIONS are the operator's actions, each a POST /v1/deployments/ID/<action> (src/deploy/operator.ts). */
const OPERATIONS: { action: OperatorAction; summary: string }[] = [
  { action: 'pause', summary: 'Pause a deployment: no new batch starts; the tasks in flight finish their health gate (409 E_DEPLOYMENT_STATE when paused already)' },
  { action: 'resume', summary: 'Resume a paused deployment: the rollout goes on, its progress deadline counted from now (409 E_DEPLOYMENT_STATE when not paused)' },
  { action: 'abort', summary: 'Abort a deployment where it stands: its tasks stay on the spec they run; status aborted' },
  { action: 'revert', summary: 'Revert a deployment: a deployment of its own (revertOf) rolls the group back to the previous spec; status reverted (409 E_DEPLOYMENT_NO_PREVIOUS without one)' },
];

const idParams = z.object({ id: z.string().regex(/^dep-[0-9a-f]{1,10}$|^[0-9a-f]{5,10}$/, 'a deployment id (dep-…) or a prefix of its hex') });

/** deploymentsRoutes list deployments, show one, promote one's canaries, pause, resume, abort or revert one; a project's token sees and acts on its project's (409 E_DEPLOYMENT_FINISHED once it ended). */
export const deploymentsRoutes: ApiRoutes = (r, { backend, services, writes }) => {
  r.get(
    '/v1/deployments',
    { config: READ, schema: { summary: 'Deployments, newest first (of one plan with ?plan=)', tags: ['deployments'], headers: idHeaders, querystring: z.object({ plan: nameParam.optional() }), response: errorResponses } },
    async (req) => {
      const { listDeployments } = await import('../../deploy/actions.js');
      return { rev: backend.view().rev, deployments: listDeployments(backend.view(), { project: callerOf(req).project, ...(req.query.plan ? { plan: req.query.plan } : {}) }) };
    },
  );

  r.get(
    '/v1/deployments/:id',
    { config: READ, schema: { summary: 'One deployment: status, each new task\'s progress, the policy it follows, and its events (the newest 50)', tags: ['deployments'], headers: idHeaders, params: idParams, response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      const { deploymentEvents, findDeployment } = await import('../../deploy/actions.js');
      const deployment = findDeployment(backend.view(), req.params.id, callerOf(req).project);
      return { rev: backend.view().rev, deployment, events: deploymentEvents(backend, deployment.id) };
    },
  );

  r.post(
    '/v1/deployments/:id/promote',
    { config: WRITE, schema: { summary: 'Promote a deployment\'s canaries: the rollout of the other tasks goes on', tags: ['deployments'], headers: idHeaders, params: idParams, response: { ...errorResponses, 404: errorSchema, 409: errorSchema } } },
    async (req) => {
      const { findDeployment } = await import('../../deploy/actions.js');
      const d = findDeployment(backend.view(), req.params.id, callerOf(req).project);
      return writes.write(req, `deploy promote ${d.id}`, { topic: 'deployment', kind: 'deployment-promote-requested', plan: d.plan, project: d.project, deployment: d.id }, async () => ({
        deployment: await services.promoteDeployment(d.id, { ...ctxOf(req), project: callerOf(req).project }),
      }));
    },
  );

  for (const { action, summary } of OPERATIONS) {
    r.post(
      `/v1/deployments/:id/${action}`,
      { config: WRITE, schema: { summary, tags: ['deployments'], headers: idHeaders, params: idParams, response: { ...errorResponses, 404: errorSchema, 409: errorSchema } } },
      async (req) => {
        const { findDeployment } = await import('../../deploy/actions.js');
        const d = findDeployment(backend.view(), req.params.id, callerOf(req).project);
        return writes.write(req, `deploy ${action} ${d.id}`, { topic: 'deployment', kind: `deployment-${action}-requested`, plan: d.plan, project: d.project, deployment: d.id }, async () => ({
          deployment: await services.operateDeployment(d.id, action, { ...ctxOf(req), project: callerOf(req).project }),
        }));
      },
    );
  }
};
