/**
 * What a routes file gets from the app: the fastify instance typed for zod schemas, and the host's
 * parts its handlers use (state, operations, tokens, metrics, the write queue, NDJSON answers).
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ControlStatus } from '../../control/control-status.js';
import type { StateBackend } from '../../state/backend.js';
import type { ControlApi } from '../contract.js';
import type { ApiError } from '../errors.js';
import type { ApiMetrics } from '../metrics.js';
import type { NdjsonRun } from '../ndjson.js';
import type { TokenStore } from '../tokens.js';
import type { WriteQueue } from '../write-queue.js';

/** ZodApp is the fastify app with zod schemas as its type provider (what routes are declared on). */
export type ZodApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

/** RouteContext is what route handlers use besides the request. */
export interface RouteContext {
  backend: StateBackend;
  services: ControlApi;
  tokens: TokenStore;
  metrics: ApiMetrics;
  log: (line: string) => void;
  /** writes runs every write one at a time and records who asked for it. */
  writes: WriteQueue;
  /** ndjson answers with a stream of lines: progress, a keep-alive `{}`, then the result or the error (ndjson.ts). */
  ndjson: (req: FastifyRequest, reply: FastifyReply, run: NdjsonRun) => Promise<void>;
  /** health adds fields to GET /v1/health for local and authenticated callers. */
  health?: () => Record<string, unknown>;
  /** controlStatus answers GET /v1/control (absent: this host is the single host of its state). */
  controlStatus?: () => Promise<ControlStatus>;
  /** writeGate says why this host must not write now (a follower on etcd), else undefined (ApiAppOptions.writeGate). */
  writeGate?: () => ApiError | undefined;
  sseHeartbeatMs: number;
  sseMaxBuffer: number;
}

/** ApiRoutes declares one resource's routes on the app (a file under src/api/routes/, listed in app.ts). */
export type ApiRoutes = (r: ZodApp, ctx: RouteContext) => void;

/** READ is the config of a route that needs a read token (on TCP). */
export const READ = { scope: 'read' as const };
/** WRITE is the config of a route that needs a write token (on TCP). */
export const WRITE = { scope: 'write' as const };
/** ADMIN is the config of a route that needs an admin token (on TCP). */
export const ADMIN = { scope: 'admin' as const };
