/** GET /v1/status: agents, tasks and recent events (a project's token sees its own tasks and their events). */
import * as z from 'zod';
import { callerOf, ctxOf } from '../auth.js';
import { boolQuery, errorResponses, idHeaders } from '../schemas.js';
import { READ, type ApiRoutes } from './context.js';

/** statusRoutes answer what `factory status` shows. */
export const statusRoutes: ApiRoutes = (r, { services, writeGate }) => {
  r.get(
    '/v1/status',
    { config: READ, schema: { summary: 'Agents, tasks and recent events (cached: from the state only)', tags: ['status'], headers: idHeaders, querystring: z.object({ cached: boolQuery, events: z.coerce.number().int().min(0).max(1000).optional() }), response: errorResponses } },
    async (req) => {
      const caller = callerOf(req);
      // a follower asks the agents but records nothing and stops no stray: only the leader acts
      const follower = req.query.cached ? undefined : writeGate?.();
      const readOnly = follower ? `this control host follows; the leader records what the agents report${follower.extra?.leader ? ` (${follower.extra.leader})` : ''}` : undefined;
      const out = await services.status({ cached: req.query.cached, events: req.query.events, ...(readOnly ? { readOnly } : {}) }, ctxOf(req));
      if (caller.project === undefined) return out;
      const tasks = out.tasks.filter((t) => t.project === caller.project);
      const mine = new Set(tasks.map((t) => t.task));
      return { ...out, tasks, events: out.events.filter((e) => e.task !== undefined && mine.has(e.task)) };
    },
  );
};
