/**
 * The HTTP API of the control host: one fastify app, schema-first (zod), served by ApiHost on the
 * state's unix socket and, optionally, on TCP with TLS. Everything here is the HTTP layer: callers,
 * scopes and projects, limits, deadlines, streams and errors. The operations themselves go through
 * a ControlApi (contract.ts); reads of records go to the StateBackend.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { FactoryError, SpecError, type SpecIssue } from '../errors.js';
import { loadPlanText } from '../spec/load.js';
import type { PlanSpec } from '../spec/model.js';
import { EVENT_TOPICS, type EventInput, type EventTopic, type StateBackend } from '../state/backend.js';
import type { TaskRecord, TokenScope } from '../state/types.js';
import type { Caller, ControlApi, OpContext, PlanDocuments, SpecDocument } from './contract.js';
import { ApiError, errorAnswer } from './errors.js';
import { DEFAULT_SSE_HEARTBEAT_MS, DEFAULT_SSE_MAX_BUFFER, streamEvents } from './events.js';
import { ApiMetrics } from './metrics.js';
import { scopeAllows, TOKEN_ID_RE, TokenStore } from './tokens.js';

/** LOCAL marks a request that came in on the unix socket (set by ApiHost before routing). */
export const LOCAL = Symbol('factory.api.local');

/** DEFAULT_BODY_LIMIT is the largest request body accepted (8 MiB); a larger one is answered 413. */
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;
/** NDJSON_KEEPALIVE_MS is the time between `{}` lines of a long NDJSON answer. */
export const NDJSON_KEEPALIVE_MS = 5_000;
/** DEADLINE_HEADER carries the client's deadline in epoch milliseconds. */
export const DEADLINE_HEADER = 'x-factory-deadline';
export const API_VERSION = '1';

/** ApiAppOptions configure the app. */
export interface ApiAppOptions {
  backend: StateBackend;
  services: ControlApi;
  tokens?: TokenStore;
  metrics?: ApiMetrics;
  log?: (line: string) => void;
  bodyLimit?: number;
  sseHeartbeatMs?: number;
  sseMaxBuffer?: number;
  keepAliveMs?: number;
  /** localUser names the socket's user in events (`local:<user>`); default the host's user. */
  localUser?: string;
  /** health adds fields to GET /v1/health for local and authenticated callers (pid, socket, addresses, ...). */
  health?: () => Record<string, unknown>;
  /**
   * auditEvents records every write as an event `<op>-requested` (or `-failed`) with `by` = the caller
   * (default true). Turn it off once the control operations record their own events with `by`.
   */
  auditEvents?: boolean;
}

// ---- schemas -------------------------------------------------------------------------------------

/** SEGMENT is one name: letters, digits, '.', '_', '-', not starting with '.', '_' or '-' (no `..`, spaces or shell characters). */
const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._-]{0,127}';
const nameParam = z.string().regex(new RegExp(`^${SEGMENT}$`), 'a name: letters, digits, ".", "_" and "-"');
const taskIdParam = z.string().regex(new RegExp(`^${SEGMENT}(/${SEGMENT}){0,3}$`), 'a task id plan/group/index (URL-encode the slashes)');
const fileName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/, 'a relative file name without "..", spaces or shell characters');
const specDoc = z.object({ file: fileName, text: z.string().max(4 * 1024 * 1024) }).meta({ id: 'SpecDocument' });
const planBody = z
  .object({
    plans: z.array(specDoc).max(256).optional().describe('plan documents; positions in errors are file:line:col of `file`'),
    planTexts: z.record(fileName, z.string().max(4 * 1024 * 1024)).optional().describe('plan documents as {name: text}'),
    inventory: specDoc.optional().describe('an inventory to use instead of the host\'s (admin tokens only)'),
    offline: z.boolean().optional(),
    seed: z.number().int().optional(),
  })
  .strict();
const issueSchema = z.object({ file: z.string(), line: z.number(), col: z.number(), path: z.string(), message: z.string() }).meta({ id: 'SpecIssue' });
const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional(), issues: z.array(issueSchema).optional() }) }).meta({ id: 'Error' });
const boolQuery = z.enum(['true', 'false', '1', '0', '']).optional().transform((v) => v === 'true' || v === '1' || v === '');
const tokenBody = z
  .object({
    scope: z.enum(['read', 'write', 'admin']),
    project: nameParam.optional(),
    description: z.string().max(200).optional(),
  })
  .strict();
const idHeaders = z.object({
  'x-request-id': z.string().optional(),
  [DEADLINE_HEADER]: z.string().optional().describe('epoch ms after which the request must not run (answered 408)'),
  authorization: z.string().optional().describe('Bearer fct_<id>_<secret> (TCP; the unix socket trusts its user)'),
});

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
    deadline?: number;
    /** clientGone is set when the connection closed before the answer was complete. */
    clientGone?: boolean;
  }
  interface FastifyContextConfig {
    /** scope is what the route needs (absent: no token needed). */
    scope?: TokenScope;
  }
}

/** buildApp returns the fastify app (not listening: ApiHost serves it, tests inject into it). */
export async function buildApp(opts: ApiAppOptions): Promise<FastifyInstance> {
  const { backend, services } = opts;
  const tokens = opts.tokens ?? new TokenStore(backend);
  const metrics = opts.metrics ?? new ApiMetrics(backend);
  const log = opts.log ?? (() => undefined);
  const localUser = opts.localUser ?? safeUser();
  const keepAliveMs = opts.keepAliveMs ?? NDJSON_KEEPALIVE_MS;
  const sseHeartbeatMs = opts.sseHeartbeatMs ?? (Number(process.env.FACTORY_SSE_HEARTBEAT_MS) > 0 ? Number(process.env.FACTORY_SSE_HEARTBEAT_MS) : DEFAULT_SSE_HEARTBEAT_MS);
  const sseMaxBuffer = opts.sseMaxBuffer ?? DEFAULT_SSE_MAX_BUFFER;

  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 512 },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Compute Factory control API', version: API_VERSION, description: 'The control host\'s HTTP API (unix socket: same-user trust; TCP: TLS and bearer tokens).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'fct_<12 hex>_<secret>' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  // ---- lifecycle: request id, deadline, caller, metrics, errors ----
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) req.clientGone = true;
    });
    const raw = req.headers[DEADLINE_HEADER];
    if (raw !== undefined) {
      const deadline = Number(raw);
      if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(deadline)) {
        throw new ApiError(400, 'E_BAD_REQUEST', `${DEADLINE_HEADER} must be epoch milliseconds`);
      }
      req.deadline = deadline;
    }
    checkDeadline(req);
    req.caller = authenticate(req);
  });
  app.addHook('preHandler', async (req) => checkDeadline(req)); // reading a large body took time
  app.addHook('onResponse', async (req, reply) => {
    metrics.requestDuration.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler(async (err, req, reply) => {
    const { status, body } = errorAnswer(err);
    if (status >= 500) log(`${req.id} ${req.method} ${req.url}: ${body.error.message}`);
    return reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ error: { code: 'E_NOT_FOUND', message: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` } }),
  );

  function authenticate(req: FastifyRequest): Caller | undefined {
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

  function checkDeadline(req: FastifyRequest): void {
    if (req.deadline !== undefined && Date.now() > req.deadline) {
      throw new ApiError(408, 'E_DEADLINE', `the request's deadline passed ${Date.now() - req.deadline} ms before it started; it was not run`);
    }
  }

  const callerOf = (req: FastifyRequest): Caller => req.caller ?? { id: 'anonymous', scope: 'read', local: false };
  const ctxOf = (req: FastifyRequest, extra: Partial<OpContext> = {}): OpContext => ({ by: callerOf(req).id, requestId: req.id, ...extra });

  /** visibleTask returns the task when the caller may see it; another project's task is "not found". */
  function visibleTask(caller: Caller, id: string): TaskRecord | undefined {
    const rec = backend.view().get('tasks', id);
    if (caller.project !== undefined && rec?.project !== caller.project) {
      throw new FactoryError(`no task '${id}' in the state`, { code: 'E_TASK_UNKNOWN' });
    }
    return rec;
  }

  /** record commits an audit event for a write (who did what); its failure is logged, never the request's. */
  async function record(e: EventInput): Promise<void> {
    if (opts.auditEvents === false) return;
    try {
      await backend.lock({ purpose: 'api event', timeoutMs: 10_000 });
      try {
        await backend.commit({ ops: [], events: [e] });
      } finally {
        await backend.unlock();
      }
    } catch (err) {
      log(`cannot record event ${e.kind}: ${(err as Error).message}`);
    }
  }

  // writes run one at a time; one whose client left or whose deadline passed while it waited never runs
  let queue: Promise<unknown> = Promise.resolve();
  /** running says which write runs now (told to a write that has to wait for it). */
  let running: string | undefined;
  function serialized<T>(req: FastifyRequest, what: string, fn: () => Promise<T>, progress?: (line: string) => void): Promise<T> {
    if (running) progress?.(`waiting for the write before it to finish: ${running}`);
    const run = async () => {
      // let what already arrived on the connection be seen first: a host resumed from SIGSTOP reads the
      // request and its client's hang-up in one go, and the hang-up must win
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (req.clientGone || req.raw.socket?.destroyed || req.raw.socket?.readableEnded) throw new ApiError(499, 'E_CLIENT_GONE', 'the client went away before it started; not run');
      checkDeadline(req);
      running = what;
      const t0 = performance.now();
      try {
        const out = await fn();
        log(`${req.id} served ${what} for ${callerOf(req).id} in ${Math.round(performance.now() - t0)} ms`);
        return out;
      } finally {
        running = undefined;
      }
    };
    const next = queue.then(run, run);
    queue = next.catch(() => undefined);
    return next.catch((err) => {
      if ((err as ApiError).code === 'E_CLIENT_GONE' || (err as ApiError).code === 'E_DEADLINE') log(`${req.id} dropped ${what}: ${(err as Error).message}`);
      throw err;
    });
  }

  /** writeOp runs a write in the queue and records it as an event by the caller. */
  async function writeOp<T>(req: FastifyRequest, what: string, event: Omit<EventInput, 'by' | 'message'>, fn: () => Promise<T>, progress?: (line: string) => void): Promise<T> {
    const by = callerOf(req).id;
    try {
      const out = await serialized(req, what, fn, progress);
      await record({ ...event, message: `${what} by ${by}`, by });
      return out;
    } catch (err) {
      if ((err as ApiError).code !== 'E_CLIENT_GONE' && (err as ApiError).code !== 'E_DEADLINE') {
        await record({ ...event, kind: `${event.kind}-failed`, message: `${what} by ${by} failed: ${(err as Error).message}`, by });
      }
      throw err;
    }
  }

  /** parsePlans validates the sent plans with their sent names and checks the caller may touch them. */
  function parsePlans(req: FastifyRequest, body: z.infer<typeof planBody>): PlanDocuments {
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

  /** ndjson answers with a stream of lines: progress, a keep-alive `{}` every keepAliveMs, then the result or the error. */
  async function ndjson(req: FastifyRequest, reply: FastifyReply, run: (progress: (line: string) => void, signal: AbortSignal) => Promise<unknown>): Promise<void> {
    const res = reply.raw;
    reply.hijack();
    const started = process.hrtime.bigint();
    const ac = new AbortController();
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': req.id });
    res.flushHeaders();
    const line = (v: unknown) => {
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(v)}\n`);
    };
    res.on('close', () => {
      if (!res.writableEnded) ac.abort();
    });
    const keepAlive = setInterval(() => line({}), keepAliveMs);
    try {
      line({ result: await run((p) => line({ progress: p }), ac.signal) });
    } catch (err) {
      line(errorAnswer(err).body);
    } finally {
      clearInterval(keepAlive);
      if (!res.writableEnded) res.end();
      metrics.requestDuration.observe({ method: req.method, route: req.routeOptions.url ?? '', status: '200' }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  const r = app.withTypeProvider<ZodTypeProvider>();
  const read = { scope: 'read' as const };
  const write = { scope: 'write' as const };
  const admin = { scope: 'admin' as const };
  const errors = { 200: z.any().describe('the result'), 400: errorSchema, 401: errorSchema, 408: errorSchema };

  // ---- routes ----
  r.get('/v1/health', { schema: { summary: 'Whether the host answers (who serves which state: with a token or on the socket)', tags: ['host'], security: [] } }, async (req) => {
    // anyone may ask whether the host is up; what it serves is for the socket's user and token holders
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    const known = req.caller?.local === true || (m !== null && tokens.verify(m[1]!) !== undefined);
    if (!known) return { ok: true, api: API_VERSION };
    return { ok: true, api: API_VERSION, pid: process.pid, state: backend.location, stateId: backend.id, rev: backend.view().rev, ...opts.health?.() };
  });

  r.get('/v1/openapi.json', { config: read, schema: { hide: true } }, async () => app.swagger());

  r.get('/metrics', { config: read, schema: { summary: 'Prometheus metrics', tags: ['host'] } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  r.get(
    '/v1/status',
    { config: read, schema: { summary: 'Agents, tasks and recent events (cached: from the state only)', tags: ['status'], headers: idHeaders, querystring: z.object({ cached: boolQuery, events: z.coerce.number().int().min(0).max(1000).optional() }), response: errors } },
    async (req) => {
      const caller = callerOf(req);
      const out = await services.status({ cached: req.query.cached, events: req.query.events }, ctxOf(req));
      if (caller.project === undefined) return out;
      const tasks = out.tasks.filter((t) => t.project === caller.project);
      const mine = new Set(tasks.map((t) => t.task));
      return { ...out, tasks, events: out.events.filter((e) => e.task !== undefined && mine.has(e.task)) };
    },
  );

  r.get(
    '/v1/tasks',
    { config: read, schema: { summary: 'Tasks as recorded', tags: ['tasks'], headers: idHeaders, querystring: z.object({ plan: nameParam.optional(), state: z.string().max(32).optional(), project: nameParam.optional() }), response: errors } },
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
    { config: read, schema: { summary: 'One task as recorded', tags: ['tasks'], headers: idHeaders, params: z.object({ id: taskIdParam }), response: { ...errors, 404: errorSchema } } },
    async (req) => {
      const rec = visibleTask(callerOf(req), req.params.id);
      if (!rec) throw new FactoryError(`no task '${req.params.id}' in the state`, { code: 'E_TASK_UNKNOWN' });
      return { rev: backend.view().modRev('tasks', rec.task), task: rec };
    },
  );

  r.post(
    '/v1/tasks/:id/restart',
    { config: write, schema: { summary: 'Restart one task where it runs', tags: ['tasks'], headers: idHeaders, params: z.object({ id: taskIdParam }), response: { ...errors, 404: errorSchema, 409: errorSchema } } },
    async (req) => {
      const rec = visibleTask(callerOf(req), req.params.id);
      return writeOp(req, `restart ${req.params.id}`, { topic: 'task', kind: 'task-restart-requested', task: req.params.id, ...(rec ? { project: rec.project, plan: rec.plan } : {}) }, () =>
        services.restartTask(req.params.id, ctxOf(req)),
      );
    },
  );

  r.get(
    '/v1/tasks/:id/logs',
    {
      config: read,
      schema: {
        summary: 'A task\'s output as NDJSON lines {"stdout"|"stderr": text}; follow: until the client leaves',
        tags: ['tasks'],
        headers: idHeaders,
        params: z.object({ id: taskIdParam }),
        querystring: z.object({ follow: boolQuery, tail: z.coerce.number().int().min(0).max(1_000_000).optional(), stream: z.enum(['stdout', 'stderr', 'both']).default('both') }),
        response: { ...errors, 404: errorSchema },
      },
    },
    async (req, reply) => {
      visibleTask(callerOf(req), req.params.id);
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

  r.get('/v1/agents', { config: read, schema: { summary: 'Agents as recorded', tags: ['agents'], headers: idHeaders, response: errors } }, async () => ({
    rev: backend.view().rev,
    agents: backend.view().list('agents').sort((a, b) => a.name.localeCompare(b.name)),
  }));

  for (const undo of [false, true]) {
    r.post(
      `/v1/agents/:name/${undo ? 'undrain' : 'drain'}`,
      { config: write, schema: { summary: undo ? 'Clear an agent\'s drain mark' : 'Drain an agent: nothing new lands there, its tasks move', tags: ['agents'], headers: idHeaders, params: z.object({ name: nameParam }), response: { ...errors, 403: errorSchema, 404: errorSchema } } },
      async (req) => {
        const caller = callerOf(req);
        if (caller.project !== undefined) throw new ApiError(403, 'E_FORBIDDEN', `agents are shared by every project; a token of project ${caller.project} cannot drain them`);
        return writeOp(req, `${undo ? 'undrain' : 'drain'} ${req.params.name}`, { topic: 'agent', kind: undo ? 'agent-undrain-requested' : 'agent-drain-requested', agent: req.params.name }, () =>
          services.drain(req.params.name, { undo }, ctxOf(req)),
        );
      },
    );
  }

  r.post(
    '/v1/plans/diff',
    { config: read, schema: { summary: 'What apply would do (writes nothing)', tags: ['plans'], headers: idHeaders, body: planBody, response: { ...errors, 403: errorSchema, 413: errorSchema, 422: errorSchema } } },
    async (req) => services.diffPlans(parsePlans(req, req.body), ctxOf(req)),
  );

  for (const op of ['apply', 'destroy'] as const) {
    r.post(
      `/v1/plans/${op}`,
      {
        config: write,
        schema: {
          summary: `${op === 'apply' ? 'Apply' : 'Destroy'} plans; answers NDJSON: {"progress"} lines, {} every 5 s, then {"result"} or {"error"}`,
          tags: ['plans'],
          headers: idHeaders,
          body: planBody,
          response: { ...errors, 403: errorSchema, 413: errorSchema, 422: errorSchema },
        },
      },
      async (req, reply) => {
        const docs = parsePlans(req, req.body);
        const names = docs.plans.map((p) => p.name).join(', ');
        const project = [...new Set(docs.plans.map((p) => p.project))];
        await ndjson(req, reply, (progress, signal) =>
          writeOp(req, `plan ${op} ${names}`, { topic: 'plan', kind: `plan-${op}-requested`, plan: names, ...(project.length === 1 ? { project: project[0] } : {}) }, () =>
            op === 'apply' ? services.applyPlans(docs, ctxOf(req, { progress, signal })) : services.destroyPlans(docs, ctxOf(req, { progress, signal })),
            progress,
          ),
        );
      },
    );
  }

  r.post(
    '/v1/vms/:task/:action',
    { config: write, schema: { summary: 'A power action on one VM', tags: ['vms'], headers: idHeaders, params: z.object({ task: taskIdParam, action: z.enum(['start', 'stop', 'reboot', 'force-off']) }), response: { ...errors, 404: errorSchema, 409: errorSchema } } },
    async (req) => {
      const rec = visibleTask(callerOf(req), req.params.task);
      return writeOp(req, `vm ${req.params.action} ${req.params.task}`, { topic: 'vm', kind: `vm-${req.params.action}-requested`, task: req.params.task, ...(rec ? { project: rec.project, plan: rec.plan } : {}) }, () =>
        services.vmAction(req.params.task, req.params.action, ctxOf(req)),
      );
    },
  );

  r.get(
    '/v1/events',
    {
      config: read,
      schema: {
        summary: 'Server-sent events: id is the revision; Last-Event-ID resumes; `event: reset` when the revision is no longer kept',
        tags: ['events'],
        headers: idHeaders.extend({ 'last-event-id': z.string().optional() }),
        querystring: z.object({ since: z.coerce.number().int().min(0).optional(), topic: z.string().max(200).optional() }),
        response: errors,
      },
    },
    async (req, reply) => {
      const caller = callerOf(req);
      const lastId = req.headers['last-event-id'];
      let since = req.query.since;
      if (typeof lastId === 'string' && lastId !== '') {
        if (!/^\d{1,15}$/.test(lastId)) throw new ApiError(400, 'E_BAD_REQUEST', 'Last-Event-ID must be a revision');
        since = Number(lastId);
      }
      const latest = backend.view().rev;
      if (since === undefined) since = latest;
      if (since > latest) throw new ApiError(400, 'E_BAD_REQUEST', `revision ${since} is in the future (the newest is ${latest})`, 'resume from a revision this host sent');
      let topics: Set<EventTopic> | undefined;
      if (req.query.topic) {
        const want = req.query.topic.split(',').map((t) => t.trim()).filter(Boolean);
        const bad = want.filter((t) => !(EVENT_TOPICS as readonly string[]).includes(t));
        if (bad.length) throw new ApiError(400, 'E_BAD_REQUEST', `unknown topic ${bad.join(', ')}`, `topics: ${EVENT_TOPICS.join(', ')}`);
        topics = new Set(want as EventTopic[]);
      }
      reply.hijack();
      metrics.subscribers++;
      streamEvents({
        backend,
        res: reply.raw as ServerResponse,
        since,
        ...(topics ? { topics } : {}),
        ...(caller.project !== undefined ? { project: caller.project } : {}),
        heartbeatMs: sseHeartbeatMs,
        maxBuffer: sseMaxBuffer,
        headers: { 'x-request-id': req.id },
        onClose: (dropped) => {
          metrics.subscribers--;
          if (dropped) {
            metrics.sseDropped.inc({ reason: dropped.startsWith('slow') ? 'slow-reader' : 'other' });
            log(`${req.id} event stream of ${caller.id} dropped: ${dropped}`);
          }
        },
      });
    },
  );

  r.post(
    '/v1/tokens',
    { config: admin, schema: { summary: 'Create a token (its secret is shown once)', tags: ['tokens'], headers: idHeaders, body: tokenBody, response: { ...errors, 201: z.any().describe('the token (shown once) and its record'), 403: errorSchema } } },
    async (req, reply) => {
      const caller = callerOf(req);
      const project = req.body.project ?? caller.project;
      if (caller.project !== undefined && project !== caller.project) throw new ApiError(403, 'E_FORBIDDEN', `a token of project ${caller.project} can only create tokens of that project`);
      const made = await tokens.create({ scope: req.body.scope, ...(project ? { project } : {}), ...(req.body.description ? { description: req.body.description } : {}), by: caller.id });
      return reply.code(201).send(made);
    },
  );
  r.get('/v1/tokens', { config: admin, schema: { summary: 'List tokens (never their secrets)', tags: ['tokens'], headers: idHeaders, response: errors } }, async (req) => ({
    tokens: tokens.list(callerOf(req).project),
  }));
  r.delete(
    '/v1/tokens/:id',
    { config: admin, schema: { summary: 'Revoke a token', tags: ['tokens'], headers: idHeaders, params: z.object({ id: z.string().regex(TOKEN_ID_RE, 'a token id fct_<12 hex>') }), response: { ...errors, 404: errorSchema } } },
    async (req) => {
      const caller = callerOf(req);
      const rec = tokens.get(req.params.id);
      if (!rec || (caller.project !== undefined && rec.project !== caller.project)) throw new FactoryError(`no token ${req.params.id}`, { code: 'E_TOKEN_UNKNOWN' });
      await tokens.revoke(req.params.id, caller.id);
      return { revoked: req.params.id };
    },
  );

  await app.ready();
  return app;
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}
