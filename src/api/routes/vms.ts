/** POST /v1/vms/:task/:action: a power action on one VM (start, stop, reboot, force-off). */
import * as z from 'zod';
import { callerOf, ctxOf, visibleTask } from '../auth.js';
import { errorResponses, errorSchema, idHeaders, taskIdParam } from '../schemas.js';
import { WRITE, type ApiRoutes } from './context.js';

/** vmsRoutes run power actions on VMs. */
export const vmsRoutes: ApiRoutes = (r, { backend, services, writes }) => {
  r.post(
    '/v1/vms/:task/:action',
    { config: WRITE, schema: { summary: 'A power action on one VM', tags: ['vms'], headers: idHeaders, params: z.object({ task: taskIdParam, action: z.enum(['start', 'stop', 'reboot', 'force-off']) }), response: { ...errorResponses, 404: errorSchema, 409: errorSchema } } },
    async (req) => {
      const rec = visibleTask(backend, callerOf(req), req.params.task);
      return writes.write(req, `vm ${req.params.action} ${req.params.task}`, { topic: 'vm', kind: `vm-${req.params.action}-requested`, task: req.params.task, ...(rec ? { project: rec.project, plan: rec.plan } : {}) }, () =>
        services.vmAction(req.params.task, req.params.action, ctxOf(req)),
      );
    },
  );
};
