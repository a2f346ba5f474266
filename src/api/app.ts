/**
 * The HTTP API of the control host: one fastify app, schema-first (zod), served by ApiHost on the
 * state's unix socket and, optionally, on TCP with TLS. Everything here is the HTTP layer: callers,
 * scopes and projects, limits, deadlines, streams and errors. The operations themselves go through
 * a ControlApi (contract.ts); reads of records go to the StateBackend.
 *
 * This file builds the app and its request lifecycle (request id, deadline, caller, metrics,
 * errors); each resource's routes are a file under routes/, listed in ROUTES.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ControlStatus } from '../control/control-status.js';
import type { StateBackend } from '../state/backend.js';
import type { TokenScope } from '../state/types.js';
import { authenticate } from './auth.js';
import type { Caller, ControlApi } from './contract.js';
import { checkDeadline, readDeadline } from './deadline.js';
import { ApiError, errorAnswer } from './errors.js';
import { DEFAULT_SSE_HEARTBEAT_MS, DEFAULT_SSE_MAX_BUFFER } from './events.js';
import { ApiMetrics } from './metrics.js';
import { answerNdjson, NDJSON_KEEPALIVE_MS } from './ndjson.js';
import { errorSchema } from './schemas.js';
import { agentsRoutes } from './routes/agents.js';
import type { ApiRoutes, RouteContext } from './routes/context.js';
import { controlRoutes } from './routes/control.js';
import { eventsRoutes } from './routes/events.js';
import { jobsRoutes } from './routes/jobs.js';
import { deploymentsRoutes } from './routes/deployments.js';
import { API_VERSION, healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { plansRoutes } from './routes/plans.js';
import { statusRoutes } from './routes/status.js';
import { tasksRoutes } from './routes/tasks.js';
import { tokensRoutes } from './routes/tokens.js';
import { vmsRoutes } from './routes/vms.js';
import { TokenStore } from './tokens.js';
import { WriteQueue } from './write-queue.js';

/**
 * ROUTES are the API's resources, registered in this order (it is the order of the paths in
 * schema/openapi.json). A new resource is one file under routes/ and one line here.
 */
const ROUTES: readonly ApiRoutes[] = [healthRoutes, controlRoutes, metricsRoutes, statusRoutes, tasksRoutes, agentsRoutes, plansRoutes, vmsRoutes, jobsRoutes, deploymentsRoutes, eventsRoutes, tokensRoutes];

/** DEFAULT_BODY_LIMIT is the largest request body accepted (8 MiB); a larger one is answered 413. */
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

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
  /**
   * writeGate, when it returns an error, refuses every request that is not a read (not GET or HEAD)
   * with it before anything runs: a follower control host on etcd answers E_NOT_LEADER with the
   * leader's URL, and the client sends the write there.
   */
  writeGate?: () => ApiError | undefined;
  /** controlStatus answers GET /v1/control: the control hosts of the state (absent: this host alone). */
  controlStatus?: () => Promise<ControlStatus>;
}

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
    readDeadline(req);
    checkDeadline(req);
    req.caller = authenticate(req, tokens, localUser);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const refused = opts.writeGate?.();
      if (refused) throw refused;
    }
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

  // a follower on etcd answers every request but a read 421 E_NOT_LEADER (writeGate above): say so on each
  app.addHook('onRoute', (route) => {
    if ([route.method].flat().every((m) => m === 'GET' || m === 'HEAD')) return;
    const schema = route.schema as { response?: Record<string, unknown> } | undefined;
    if (schema?.response && !('421' in schema.response)) schema.response = { ...schema.response, 421: errorSchema };
  });

  // ---- routes ----
  const ctx: RouteContext = {
    backend,
    services,
    tokens,
    metrics,
    log,
    writes: new WriteQueue({ backend, log, auditEvents: opts.auditEvents }),
    ndjson: (req, reply, run) => answerNdjson(req, reply, run, { keepAliveMs, metrics }),
    health: opts.health,
    controlStatus: opts.controlStatus,
    writeGate: opts.writeGate,
    sseHeartbeatMs: opts.sseHeartbeatMs ?? (Number(process.env.FACTORY_SSE_HEARTBEAT_MS) > 0 ? Number(process.env.FACTORY_SSE_HEARTBEAT_MS) : DEFAULT_SSE_HEARTBEAT_MS),
    sseMaxBuffer: opts.sseMaxBuffer ?? DEFAULT_SSE_MAX_BUFFER,
  };
  const r = app.withTypeProvider<ZodTypeProvider>();
  for (const routes of ROUTES) routes(r, ctx);

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
