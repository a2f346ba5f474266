/** GET /v1/health (whether the host answers, and what it serves) and GET /v1/openapi.json (the API's document). */
import { READ, type ApiRoutes } from './context.js';

/** API_VERSION is the version of the API (`/v1`), in GET /v1/health and the OpenAPI document's info. */
export const API_VERSION = '1';

/** healthRoutes answer whether the host is up, and serve the OpenAPI document. */
export const healthRoutes: ApiRoutes = (r, { backend, tokens, health }) => {
  r.get('/v1/health', { schema: { summary: 'Whether the host answers (who serves which state: with a token or on the socket)', tags: ['host'], security: [] } }, async (req) => {
    // anyone may ask whether the host is up; what it serves is for the socket's user and token holders
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    const known = req.caller?.local === true || (m !== null && tokens.verify(m[1]!) !== undefined);
    if (!known) return { ok: true, api: API_VERSION };
    return { ok: true, api: API_VERSION, pid: process.pid, state: backend.location, stateId: backend.id, rev: backend.view().rev, ...health?.() };
  });

  r.get('/v1/openapi.json', { config: READ, schema: { hide: true } }, async () => r.swagger());
};
