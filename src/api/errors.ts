/**
 * HTTP errors: every failure is answered as `{"error": {"code", "message", "hint"}}` with a fitting
 * status; no stack trace ever leaves the host.
 */
import { FactoryError, SpecError, type SpecIssue } from '../errors.js';

/** ApiError is a failure of the HTTP layer itself (auth, limits, bad input), with its status. */
export class ApiError extends FactoryError {
  constructor(readonly status: number, code: string, message: string, hint?: string, readonly extra?: { leader?: string }) {
    super(message, { code, hint });
  }
}

/** ErrorBody is what an error answer carries. */
export interface ErrorBody {
  /** leader is the URL of the leading control host (E_NOT_LEADER: a follower was sent a write). */
  error: { code: string; message: string; hint?: string; issues?: SpecIssue[]; leader?: string };
}

const STATUS_BY_CODE: Record<string, number> = {
  E_BAD_REQUEST: 400,
  E_USAGE: 400,
  E_BAD_FLAG: 400,
  E_TASK_ID: 400,
  E_NOT_A_VM: 400,
  E_UNAUTHORIZED: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_TASK_UNKNOWN: 404,
  E_AGENT_UNKNOWN: 404,
  E_PLAN_UNKNOWN: 404,
  E_TOKEN_UNKNOWN: 404,
  E_JOB_UNKNOWN: 404,
  E_RUN_UNKNOWN: 404,
  E_DEPLOYMENT_UNKNOWN: 404,
  E_DEADLINE: 408,
  E_STATE_LOCKED: 409,
  E_STATE_CONFLICT: 409,
  E_CONTROL_RUNNING: 409,
  E_PLAN_CHANGED: 409,
  E_PLAN_DUPLICATE: 409,
  E_TASK_AMBIGUOUS: 409,
  E_JOB_AMBIGUOUS: 409,
  E_JOB_BUSY: 409,
  E_RUN_NOT_STARTED: 409,
  E_NO_SCHEDULER: 409,
  E_VM_STATE: 409,
  E_DEPLOYMENT_STATE: 409,
  E_DEPLOYMENT_FINISHED: 409,
  E_DEPLOYMENT_NO_PREVIOUS: 409,
  E_AGENT_EXISTS: 409,
  E_AGENT_BUSY: 409,
  E_TOO_LARGE: 413,
  E_SPEC_INVALID: 422,
  E_SPEC_VALUE: 422,
  E_INVENTORY_READ: 422,
  E_AGENT_UNREACHABLE: 503,
  E_AGENT_GONE: 503,
  E_STATE_UNAVAILABLE: 503,
  E_TIMEOUT: 504,
};

/** statusOfCode maps a FactoryError code to an HTTP status (500 for codes not listed). */
export function statusOfCode(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}

/** errorAnswer turns anything thrown into a status and a body without a stack. */
export function errorAnswer(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof ApiError) return { status: err.status, body: { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...err.extra } } };
  if (err instanceof SpecError) return { status: 422, body: { error: { code: err.code, message: err.message, issues: err.issues } } };
  if (err instanceof FactoryError) return { status: statusOfCode(err.code), body: { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } } };
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  // fastify's own errors (body too large, bad JSON, bad content type, validation) carry a 4xx statusCode
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code =
      e.statusCode === 413 ? 'E_TOO_LARGE' : e.statusCode === 415 ? 'E_UNSUPPORTED_MEDIA_TYPE' : e.statusCode === 404 ? 'E_NOT_FOUND' : 'E_BAD_REQUEST';
    const message = e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? `malformed JSON body: ${e.message}` : (e.message ?? 'bad request');
    return { status: e.statusCode, body: { error: { code, message } } };
  }
  return { status: 500, body: { error: { code: 'E_INTERNAL', message: `internal error: ${e?.message ?? String(err)}` } } };
}
