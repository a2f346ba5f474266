/** /v1/agents: agents as recorded, drain and undrain (agents are every project's: a project's token may not drain them). */
import * as z from 'zod';
import { callerOf, ctxOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { errorResponses, errorSchema, idHeaders, nameParam } from '../schemas.js';
import { READ, WRITE, type ApiRoutes } from './context.js';

/** agentsRoutes list agents and drain or undrain one. */
export const agentsRoutes: ApiRoutes = (r, { backend, services, writes }) => {
  r.get('/v1/agents', { config: READ, schema: { summary: 'Agents as recorded', tags: ['agents'], headers: idHeaders, response: errorResponses } }, async () => ({
    rev: backend.view().rev,
    agents: backend.view().list('agents').sort((a, b) => a.name.localeCompare(b.name)),
  }));

  for (const undo of [false, true]) {
    r.post(
      `/v1/agents/:name/${undo ? 'undrain' : 'drain'}`,
      { config: WRITE, schema: { summary: undo ? 'Clear an agent\'s drain mark' : 'Drain an agent: nothing new lands there, its tasks move', tags: ['agents'], headers: idHeaders, params: z.object({ name: nameParam }), response: { ...errorResponses, 403: errorSchema, 404: errorSchema } } },
      async (req) => {
        const caller = callerOf(req);
        if (caller.project !== undefined) throw new ApiError(403, 'E_FORBIDDEN', `agents are shared by every project; a token of project ${caller.project} cannot drain them`);
        return writes.write(req, `${undo ? 'undrain' : 'drain'} ${req.params.name}`, { topic: 'agent', kind: undo ? 'agent-undrain-requested' : 'agent-drain-requested', agent: req.params.name }, () =>
          services.drain(req.params.name, { undo }, ctxOf(req)),
        );
      },
    );
  }
};
