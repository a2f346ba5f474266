/**
 * /v1/plans: diff (writes nothing), apply and destroy (NDJSON). The plans come in the request as
 * texts under the names errors report them by; a project's token may only send its project's plans.
 */
import type { FastifyRequest } from 'fastify';
import * as z from 'zod';
import { FactoryError, SpecError, type SpecIssue } from '../../errors.js';
import { loadPlanText } from '../../spec/load.js';
import type { PlanSpec } from '../../spec/model.js';
import type { StateBackend } from '../../state/backend.js';
import { callerOf, ctxOf } from '../auth.js';
import type { PlanDocuments, SpecDocument } from '../contract.js';
import { ApiError } from '../errors.js';
import { errorResponses, errorSchema, fileName, idHeaders, specDoc } from '../schemas.js';
import { scopeAllows } from '../tokens.js';
import { READ, WRITE, type ApiRoutes } from './context.js';

const planBody = z
  .object({
    plans: z.array(specDoc).max(256).optional().describe('plan documents; positions in errors are file:line:col of `file`'),
    planTexts: z.record(fileName, z.string().max(4 * 1024 * 1024)).optional().describe('plan documents as {name: text}'),
    inventory: specDoc.optional().describe('an inventory to use instead of the host\'s (admin tokens only)'),
    offline: z.boolean().optional(),
    seed: z.number().int().optional(),
  })
  .strict();

/** plansRoutes diff, apply and destroy the plans a request carries. */
export const plansRoutes: ApiRoutes = (r, { backend, services, writes, ndjson }) => {
  r.post(
    '/v1/plans/diff',
    { config: READ, schema: { summary: 'What apply would do (writes nothing)', tags: ['plans'], headers: idHeaders, body: planBody, response: { ...errorResponses, 403: errorSchema, 413: errorSchema, 422: errorSchema } } },
    async (req) => services.diffPlans(parsePlans(backend, req, req.body), ctxOf(req)),
  );

  for (const op of ['apply', 'destroy'] as const) {
    r.post(
      `/v1/plans/${op}`,
      {
        config: WRITE,
        schema: {
          summary: `${op === 'apply' ? 'Apply' : 'Destroy'} plans; answers NDJSON: {"progress"} lines, {} every 5 s, then {"result"} or {"error"}`,
          tags: ['plans'],
          headers: idHeaders,
          body: planBody,
          response: { ...errorResponses, 403: errorSchema, 413: errorSchema, 422: errorSchema },
        },
      },
      async (req, reply) => {
        const docs = parsePlans(backend, req, req.body);
        const names = docs.plans.map((p) => p.name).join(', ');
        const project = [...new Set(docs.plans.map((p) => p.project))];
        await ndjson(req, reply, (progress, signal) =>
          writes.write(req, `plan ${op} ${names}`, { topic: 'plan', kind: `plan-${op}-requested`, plan: names, ...(project.length === 1 ? { project: project[0] } : {}) }, () =>
            op === 'apply' ? services.applyPlans(docs, ctxOf(req, { progress, signal })) : services.destroyPlans(docs, ctxOf(req, { progress, signal })),
            progress,
          ),
        );
      },
    );
  }
};

/** parsePlans validates the sent plans with their sent names and checks the caller may touch them. */
function parsePlans(backend: StateBackend, req: FastifyRequest, body: z.infer<typeof planBody>): PlanDocuments {
  const caller = callerOf(req);
  const docs: SpecDocument[] = [...(body.plans ?? []), ...Object.entries(body.planTexts ?? {}).map(([file, text]) => ({ file, text }))];
  if (docs.length === 0) throw new ApiError(400, 'E_BAD_REQUEST', 'no plans in the request', 'send {"plans": [{"file", "text"}]} or {"planTexts": {"name.yaml": "…"}}');
  const plans: PlanSpec[] = [];
  const issues: SpecIssue[] = [];
  for (const d of docs) {
    try {
      plans.push(loadPlanText(d.text, d.file));
    } catch (err) {
      if (err instanceof SpecError) issues.push(...err.issues);
      else throw err;
    }
  }
  if (issues.length > 0) throw new SpecError(issues);
  const seen = new Map<string, string>();
  for (const p of plans) {
    const other = seen.get(p.name);
    if (other) throw new FactoryError(`two plans are named '${p.name}' (${other}, ${p.file})`, { code: 'E_PLAN_DUPLICATE' });
    seen.set(p.name, p.file);
  }
  if (caller.project !== undefined) {
    for (const p of plans) {
      const recorded = backend.view().get('plans', p.name);
      if (p.project !== caller.project || (recorded && recorded.project !== caller.project)) {
        throw new ApiError(403, 'E_FORBIDDEN', `plan ${p.name} (${p.file}) is outside project ${caller.project}`, `this token may only act on project ${caller.project}`);
      }
    }
  }
  if (body.inventory && !scopeAllows(caller.scope, 'admin')) throw new ApiError(403, 'E_FORBIDDEN', 'sending an inventory needs an admin token');
  return { plans, texts: docs, ...(body.inventory ? { inventory: body.inventory } : {}), ...(body.offline !== undefined ? { offline: body.offline } : {}), ...(body.seed !== undefined ? { seed: body.seed } : {}) };
}
