/** /v1/tokens: create, list and revoke tokens (admin; a project's token only its project's). */
import * as z from 'zod';
import { FactoryError } from '../../errors.js';
import { callerOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { errorResponses, errorSchema, idHeaders, nameParam } from '../schemas.js';
import { TOKEN_ID_RE } from '../tokens.js';
import { ADMIN, type ApiRoutes } from './context.js';

const tokenBody = z
  .object({
    scope: z.enum(['read', 'write', 'admin']),
    project: nameParam.optional(),
    description: z.string().max(200).optional(),
  })
  .strict();

/** tokensRoutes create, list and revoke tokens. */
export const tokensRoutes: ApiRoutes = (r, { tokens }) => {
  r.post(
    '/v1/tokens',
    { config: ADMIN, schema: { summary: 'Create a token (its secret is shown once)', tags: ['tokens'], headers: idHeaders, body: tokenBody, response: { ...errorResponses, 201: z.any().describe('the token (shown once) and its record'), 403: errorSchema } } },
    async (req, reply) => {
      const caller = callerOf(req);
      const project = req.body.project ?? caller.project;
      if (caller.project !== undefined && project !== caller.project) throw new ApiError(403, 'E_FORBIDDEN', `a token of project ${caller.project} can only create tokens of that project`);
      const made = await tokens.create({ scope: req.body.scope, ...(project ? { project } : {}), ...(req.body.description ? { description: req.body.description } : {}), by: caller.id });
      return reply.code(201).send(made);
    },
  );
  r.get('/v1/tokens', { config: ADMIN, schema: { summary: 'List tokens (never their secrets)', tags: ['tokens'], headers: idHeaders, response: errorResponses } }, async (req) => ({
    tokens: tokens.list(callerOf(req).project),
  }));
  r.delete(
    '/v1/tokens/:id',
    { config: ADMIN, schema: { summary: 'Revoke a token', tags: ['tokens'], headers: idHeaders, params: z.object({ id: z.string().regex(TOKEN_ID_RE, 'a token id fct_<12 hex>') }), response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      const caller = callerOf(req);
      const rec = tokens.get(req.params.id);
      if (!rec || (caller.project !== undefined && rec.project !== caller.project)) throw new FactoryError(`no token ${req.params.id}`, { code: 'E_TOKEN_UNKNOWN' });
      await tokens.revoke(req.params.id, caller.id);
      return { revoked: req.params.id };
    },
  );
};
