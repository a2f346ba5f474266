/** /v1/tasks: tasks as recorded, one task, its restart and its logs (NDJSON). */
import * as z from 'zod';
import { FactoryError } from '../../errors.js';
import { callerOf, ctxOf, visibleTask } from '../auth.js';
import { boolQuery, errorResponses, errorSchema, idHeaders, nameParam, taskIdParam } from '../schemas.js';
import { READ, WRITE, type ApiRoutes } from './context.js';

/** tasksRoutes list, show, restart and stream the logs of tasks. */
export const tasksRoutes: ApiRoutes = (r, { backend, services, writes, ndjson }) => {
  r.get(
    '/v1/tasks',
    { config: READ, schema: { summary: 'Tasks as recorded', tags: ['tasks'], headers: idHeaders, querystring: z.object({ plan: nameParam.optional(), state: z.string().max(32).optional(), project: nameParam.optional() }), response: errorResponses } },
    async (req) => {
      const caller = callerOf(req);
      const tasks = backend
        .view()
        .list('tasks')
        .filter((t) => (caller.project === undefined || t.project === caller.project) && (!req.query.plan || t.plan === req.query.plan) && (!req.query.state || t.state === req.query.state) && (!req.query.project || t.project === req.query.project))
        .sort((a, b) => a.task.localeCompare(b.task, 'en', { numeric: true }));
      return { rev: backend.view().rev, tasks };
    },
  );

  r.get(
    '/v1/tasks/:id',
    { config: READ, schema: { summary: 'One task as recorded', tags: ['tasks'], headers: idHeaders, params: z.object({ id: taskIdParam }), response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      const rec = visibleTask(backend, callerOf(req), req.params.id);
      if (!rec) throw new FactoryError(`no task '${req.params.id}' in the state`, { code: 'E_TASK_UNKNOWN' });
      return { rev: backend.view().modRev('tasks', rec.task), task: rec };
    },
  );

  r.post(
    '/v1/tasks/:id/restart',
    { config: WRITE, schema: { summary: 'Restart one task where it runs', tags: ['tasks'], headers: idHeaders, params: z.object({ id: taskIdParam }), response: { ...errorResponses, 404: errorSchema, 409: errorSchema } } },
    async (req) => {
      const rec = visibleTask(backend, callerOf(req), req.params.id);
      return writes.write(req, `restart ${req.params.id}`, { topic: 'task', kind: 'task-restart-requested', task: req.params.id, ...(rec ? { project: rec.project, plan: rec.plan } : {}) }, () =>
        services.restartTask(req.params.id, ctxOf(req)),
      );
    },
  );

  r.get(
    '/v1/tasks/:id/logs',
    {
      config: READ,
      schema: {
        summary: 'A task\'s output as NDJSON lines {"stdout"|"stderr": text}; follow: until the client leaves',
        tags: ['tasks'],
        headers: idHeaders,
        params: z.object({ id: taskIdParam }),
        querystring: z.object({ follow: boolQuery, tail: z.coerce.number().int().min(0).max(1_000_000).optional(), stream: z.enum(['stdout', 'stderr', 'both']).default('both') }),
        response: { ...errorResponses, 404: errorSchema },
      },
    },
    async (req, reply) => {
      visibleTask(backend, callerOf(req), req.params.id);
      const { follow, tail, stream } = req.query;
      await ndjson(req, reply, async (_progress, signal) => {
        const res = reply.raw;
        await services.logs(
          { task: req.params.id, follow, ...(tail !== undefined ? { tail } : {}), stream, onData: (s, chunk) => void (res.writableEnded || res.destroyed ? undefined : res.write(`${JSON.stringify({ [s]: chunk })}\n`)) },
          ctxOf(req, { signal }),
        );
        return { end: true };
      });
    },
  );
};
