/**
 * Who calls, and what they may see. The unix socket's user is an admin (`local:<user>`); on TCP a
 * route that names a scope needs `Authorization: Bearer fct_…` of at least that scope (401 without a
 * valid token, 403 with a weaker one). A token with a project sees only that project's records:
 * another project's task is "not found".
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { FactoryError } from '../errors.js';
import type { StateBackend } from '../state/backend.js';
import type { TaskRecord } from '../state/types.js';
import type { Caller, OpContext } from './contract.js';
import { ApiError } from './errors.js';
import { scopeAllows, type TokenStore } from './tokens.js';

/** LOCAL marks a request that came in on the unix socket (set by ApiHost before routing). */
export const LOCAL = Symbol('factory.api.local');

/** authenticate says who sent req: the socket's user, a token's holder, or nobody when the route needs no scope. */
export function authenticate(req: FastifyRequest, tokens: TokenStore, localUser: string): Caller | undefined {
  const need = req.routeOptions.config?.scope;
  if ((req.raw as IncomingMessage & { [LOCAL]?: boolean })[LOCAL]) return { id: `local:${localUser}`, scope: 'admin', local: true };
  if (!need) return undefined;
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  if (!m) throw new ApiError(401, 'E_UNAUTHORIZED', 'a token is required', 'send Authorization: Bearer fct_… (the root token is in <state>/tokens/root)');
  const rec = tokens.verify(m[1]!);
  if (!rec) throw new ApiError(401, 'E_UNAUTHORIZED', 'the token is not valid (unknown, revoked or malformed)');
  if (!scopeAllows(rec.scope, need)) throw new ApiError(403, 'E_FORBIDDEN', `this needs a ${need} token; ${rec.id} is ${rec.scope}`);
  return { id: rec.id, scope: rec.scope, local: false, ...(rec.project ? { project: rec.project } : {}) };
}

/** callerOf is the request's caller (an anonymous reader on a route that needs no scope). */
export function callerOf(req: FastifyRequest): Caller {
  return req.caller ?? { id: 'anonymous', scope: 'read', local: false };
}

/** ctxOf is the OpContext an operation runs with: the caller's id and the request id, plus extra. */
export function ctxOf(req: FastifyRequest, extra: Partial<OpContext> = {}): OpContext {
  return { by: callerOf(req).id, requestId: req.id, ...extra };
}

/** visibleTask returns the task when the caller may see it; another project's task is "not found". */
export function visibleTask(backend: StateBackend, caller: Caller, id: string): TaskRecord | undefined {
  const rec = backend.view().get('tasks', id);
  if (caller.project !== undefined && rec?.project !== caller.project) {
    throw new FactoryError(`no task '${id}' in the state`, { code: 'E_TASK_UNKNOWN' });
  }
  return rec;
}
