/**
 * The zod schemas the API's routes share: names and task ids in paths, the error answer, the request
 * headers every route documents, the plan documents a request carries. A schema with a `meta({id})`
 * becomes a named component of schema/openapi.json, in the order the schemas are created.
 */
// the spec's named schemas (Name, Duration, …) come first in the OpenAPI components, before ours:
// evaluate them before this module whichever route file imports it first
import '../spec/schema.js';
import * as z from 'zod';
import { DEADLINE_HEADER } from './deadline.js';

/** SEGMENT is one name: letters, digits, '.', '_', '-', not starting with '.', '_' or '-' (no `..`, spaces or shell characters). */
const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._-]{0,127}';
/** nameParam is an agent, plan or project name in a path or query. */
export const nameParam = z.string().regex(new RegExp(`^${SEGMENT}$`), 'a name: letters, digits, ".", "_" and "-"');
/** taskIdParam is a task id (plan/group/index) in a path. */
export const taskIdParam = z.string().regex(new RegExp(`^${SEGMENT}(/${SEGMENT}){0,3}$`), 'a task id plan/group/index (URL-encode the slashes)');
/** fileName is the name a sent document is reported under: relative, no `..`. */
export const fileName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/, 'a relative file name without "..", spaces or shell characters');
/** specDoc is one YAML document sent in a request (component SpecDocument). */
export const specDoc = z.object({ file: fileName, text: z.string().max(4 * 1024 * 1024) }).meta({ id: 'SpecDocument' });
const issueSchema = z.object({ file: z.string(), line: z.number(), col: z.number(), path: z.string(), message: z.string() }).meta({ id: 'SpecIssue' });
/** errorSchema is every error answer: `{"error": {code, message, hint?, issues?}}` (component Error). */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      hint: z.string().optional(),
      issues: z.array(issueSchema).optional(),
      leader: z.string().optional().describe('E_NOT_LEADER (421): the URL of the leading control host, where the client sends the call (nothing ran on this one)'),
    }),
  })
  .meta({ id: 'Error' });
/** boolQuery is a query flag: `true`, `1` or present without a value. */
export const boolQuery = z.enum(['true', 'false', '1', '0', '']).optional().transform((v) => v === 'true' || v === '1' || v === '');
/** idHeaders are the request headers every route documents: request id, deadline, token. */
export const idHeaders = z.object({
  'x-request-id': z.string().optional(),
  [DEADLINE_HEADER]: z.string().optional().describe('epoch ms after which the request must not run (answered 408)'),
  authorization: z.string().optional().describe('Bearer fct_<id>_<secret> (TCP; the unix socket trusts its user)'),
});
/** errorResponses are the answers every route may give besides its own (add 403, 404, … per route). */
export const errorResponses = { 200: z.any().describe('the result'), 400: errorSchema, 401: errorSchema, 408: errorSchema };
