/**
 * What a control host answered, as a value or an error: a JSON answer is parsed (empty: undefined),
 * an error answer `{"error": {code, message, hint, issues?}}` becomes an ApiError (a SpecError when
 * it carries spec issues), and anything else (a proxy's page) an ApiError naming the HTTP status.
 */
import { FactoryError, SpecError, type SpecIssue } from '../errors.js';
import type { Endpoint } from './endpoint.js';

/** ApiError is an error answer of a control host: its HTTP status, code, message and hint. */
export class ApiError extends FactoryError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    opts: { hint?: string; exitCode?: number; endpoint?: string; requestId?: string } = {},
  ) {
    super(message, { code, hint: opts.hint, exitCode: opts.exitCode ?? 1 });
    this.endpoint = opts.endpoint;
    this.requestId = opts.requestId;
  }
  readonly endpoint?: string;
  readonly requestId?: string;
}

/** parseJsonAnswer parses a successful answer's body (undefined when empty). */
export function parseJsonAnswer<T>(text: string, ep: Endpoint, requestId: string): T {
  if (!text.trim()) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new FactoryError(`control host ${ep.url} sent an answer that is not JSON (request ${requestId}): ${text.slice(0, 120)}`, { code: 'E_CONTROL_PROTOCOL' });
  }
}

/** errorFromText turns an error answer (JSON `{"error": …}` or anything else) into an error. */
export function errorFromText(text: string, status: number, endpoint: string, requestId: string): FactoryError {
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object' && 'error' in body) return errorFromBody(body as Record<string, unknown>, status, endpoint, requestId);
  } catch {
    // not JSON: a proxy, or not a control host at all
  }
  const snippet = text.trim().replace(/\s+/g, ' ').slice(0, 160);
  return new ApiError(status, status === 401 ? 'E_UNAUTHORIZED' : status === 403 ? 'E_FORBIDDEN' : `E_HTTP_${status}`, `control host ${endpoint} answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`, { endpoint, requestId });
}

/** errorFromBody turns `{"error": {code, message, hint, issues?}}` into a FactoryError (SpecError for spec issues). */
export function errorFromBody(body: Record<string, unknown>, status: number, endpoint: string, requestId?: string): FactoryError {
  const e = (body.error ?? {}) as { code?: unknown; message?: unknown; hint?: unknown; issues?: unknown; exitCode?: unknown };
  if (Array.isArray(e.issues) && e.issues.length > 0) return new SpecError(e.issues as SpecIssue[]);
  const code = typeof e.code === 'string' ? e.code : `E_HTTP_${status}`;
  const message = typeof e.message === 'string' ? e.message : `control host ${endpoint} answered HTTP ${status}`;
  let hint = typeof e.hint === 'string' ? e.hint : undefined;
  if (!hint && status === 401) hint = 'pass a token with --token-file, FACTORY_TOKEN or the context';
  const exitCode = typeof e.exitCode === 'number' && Number.isInteger(e.exitCode) && e.exitCode > 0 && e.exitCode !== 2 ? e.exitCode : 1;
  return new ApiError(status, code, message, { hint, exitCode, endpoint, requestId });
}
