/** /v1/deployments: the rollouts of changed groups (src/deploy): list, one, promote its canaries. */
import * as z from 'zod';
import { callerOf, ctxOf } from '../auth.js';
import { errorResponses, errorSchema, idHeaders, nameParam } from '../schemas.js';
import { READ, WRITE, type ApiRoutes } from './context.js';

const idParams = z.object({ id: z.string().regex(/^dep-[0-9a-f]{1,10}$|^[0-9a-f]{5,10}$/, 'a deployment id (dep-…) or a prefix of its hex') });

/** deploymentsRoutes list deployments, show one, and promote one's canaries; a project's token sees its project's. */
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
    { config: READ, schema: { summary: 'One deployment: status, each new task\'s progress, the policy it follows', tags: ['deployments'], headers: idHeaders, params: idParams, response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      const { findDeployment } = await import('../../deploy/actions.js');
      return { rev: backend.view().rev, deployment: findDeployment(backend.view(), req.params.id, callerOf(req).project) };
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
};
