/** /v1/jobs and /v1/runs: scheduled jobs, their runs, a run now, suspend/resume, a run's output (NDJSON). */
import * as z from 'zod';
import { FactoryError } from '../../errors.js';
import { callerOf, ctxOf } from '../auth.js';
import { boolQuery, errorResponses, errorSchema, idHeaders, nameParam } from '../schemas.js';
import { READ, WRITE, type ApiRoutes, type RouteContext } from './context.js';
import type { JobView } from '../contract.js';
import type { FastifyRequest } from 'fastify';

const jobParams = z.object({ plan: nameParam, job: nameParam });
const runParams = jobParams.extend({ slot: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'a slot time as 2026-12-01T02:00:00.000Z') });

/** jobViewsOf lists the jobs a caller may see (the views are built from the state as it is now). */
async function jobViewsOf(ctx: RouteContext, req: FastifyRequest): Promise<JobView[]> {
  const { jobViews } = await import('../../control/jobs.js');
  return jobViews(ctx.backend.view(), callerOf(req).project);
}

/** jobsRoutes list jobs and runs, run a job now, suspend and resume it, and stream a run's output. */
export const jobsRoutes: ApiRoutes = (r, ctx) => {
  const { backend, services, writes, ndjson } = ctx;
  const visible = (req: FastifyRequest, plan: string, job: string) => {
    const rec = backend.view().get('jobs', `${plan}/${job}`);
    const caller = callerOf(req);
    if (!rec || (caller.project !== undefined && rec.project !== caller.project)) {
      throw new FactoryError(`no job '${plan}/${job}' in the applied plans`, { code: 'E_JOB_UNKNOWN' });
    }
    return rec;
  };

  r.get(
    '/v1/jobs',
    { config: READ, schema: { summary: 'Scheduled jobs: schedule, next slot, last run, counts', tags: ['jobs'], headers: idHeaders, querystring: z.object({ plan: nameParam.optional() }), response: errorResponses } },
    async (req) => ({ rev: backend.view().rev, jobs: (await jobViewsOf(ctx, req)).filter((j) => !req.query.plan || j.plan === req.query.plan) }),
  );

  r.get(
    '/v1/jobs/:plan/:job',
    { config: READ, schema: { summary: 'One job: its view and its spec as applied', tags: ['jobs'], headers: idHeaders, params: jobParams, response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      const rec = visible(req, req.params.plan, req.params.job);
      return { job: (await jobViewsOf(ctx, req)).find((j) => j.id === rec.id), spec: rec.spec };
    },
  );

  r.get(
    '/v1/jobs/:plan/:job/runs',
    { config: READ, schema: { summary: "A job's runs (the kept history and those going), newest first", tags: ['jobs'], headers: idHeaders, params: jobParams, response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      const rec = visible(req, req.params.plan, req.params.job);
      const { jobRuns } = await import('../../control/jobs.js');
      return { rev: backend.view().rev, runs: jobRuns(backend.view(), rec) };
    },
  );

  r.post(
    '/v1/jobs/:plan/:job/run',
    { config: WRITE, schema: { summary: 'Run a job now, outside its schedule (concurrency applies unless force)', tags: ['jobs'], headers: idHeaders, params: jobParams, querystring: z.object({ force: boolQuery }), response: { ...errorResponses, 404: errorSchema, 409: errorSchema } } },
    async (req) => {
      const rec = visible(req, req.params.plan, req.params.job);
      // not queued behind other writes: the scheduler of runs claims the run on its own
      return { run: await services.runJob(rec.id, { force: req.query.force }, { ...ctxOf(req), project: callerOf(req).project }) };
    },
  );

  for (const action of ['suspend', 'resume'] as const) {
    r.post(
      `/v1/jobs/:plan/:job/${action}`,
      { config: WRITE, schema: { summary: action === 'suspend' ? 'Suspend a job: its slots are skipped until resumed' : 'Resume a suspended job', tags: ['jobs'], headers: idHeaders, params: jobParams, response: { ...errorResponses, 404: errorSchema } } },
      async (req) => {
        const rec = visible(req, req.params.plan, req.params.job);
        return writes.write(req, `jobs ${action} ${rec.id}`, { topic: 'job', kind: `job-${action}-requested`, plan: rec.plan, project: rec.project }, async () => ({
          job: await services.suspendJob(rec.id, action === 'suspend', { ...ctxOf(req), project: callerOf(req).project }),
        }));
      },
    );
  }

  r.get(
    '/v1/runs/:plan/:job/:slot',
    { config: READ, schema: { summary: 'One run', tags: ['jobs'], headers: idHeaders, params: runParams, response: { ...errorResponses, 404: errorSchema } } },
    async (req) => {
      visible(req, req.params.plan, req.params.job);
      const run = backend.view().get('runs', `${req.params.plan}/${req.params.job}/${req.params.slot}`);
      if (!run) throw new FactoryError(`no run ${req.params.plan}/${req.params.job}/${req.params.slot} (not kept, or never claimed)`, { code: 'E_RUN_UNKNOWN' });
      return { run };
    },
  );

  r.get(
    '/v1/runs/:plan/:job/:slot/logs',
    {
      config: READ,
      schema: {
        summary: 'A run\'s output as NDJSON lines {"stdout"|"stderr": text}; follow: until the run ends or the client leaves',
        tags: ['jobs'],
        headers: idHeaders,
        params: runParams,
        querystring: z.object({ follow: boolQuery, tail: z.coerce.number().int().min(0).max(1_000_000).optional(), stream: z.enum(['stdout', 'stderr', 'both']).default('both') }),
        response: { ...errorResponses, 404: errorSchema },
      },
    },
    async (req, reply) => {
      visible(req, req.params.plan, req.params.job);
      const { follow, tail, stream } = req.query;
      await ndjson(req, reply, async (_progress, signal) => {
        const res = reply.raw;
        await services.runLogs(
          { run: `${req.params.plan}/${req.params.job}/${req.params.slot}`, follow, ...(tail !== undefined ? { tail } : {}), stream, onData: (s, chunk) => void (res.writableEnded || res.destroyed ? undefined : res.write(`${JSON.stringify({ [s]: chunk })}\n`)) },
          { ...ctxOf(req, { signal }), project: callerOf(req).project },
        );
        return { end: true };
      });
    },
  );
};
