/**
 * Reading the raw document (plain JS, before zod) for the checks zod cannot express: walking it
 * without trusting its shape, and the custom resource name check plans and inventories share.
 */
import { SCALAR_NAME_RE } from './schema.js';
import type { PathSeg, SpecSource } from './source.js';
import { levenshtein, suggestKey } from './suggest.js';

/** Obj is a mapping of the raw document. */
export type Obj = Record<string, unknown>;
/** isObj says whether a raw value is a mapping. */
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** listOf is a raw value as a list (empty when it is not one). */
export const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** checkResourceKeys flags custom resource names that are malformed or look like typos of built-in ones. */
export function checkResourceKeys(src: SpecSource, path: PathSeg[], raw: unknown, builtin: readonly string[]): void {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return;
  for (const key of Object.keys(raw)) {
    if (builtin.includes(key)) continue;
    const s = suggestKey(key, builtin);
    if (s && levenshtein(key.toLowerCase(), s) <= 2) {
      src.issue([...path, key], `unknown resource '${key}' (did you mean '${s}'?)`, true);
    } else if (!SCALAR_NAME_RE.test(key)) {
      src.issue([...path, key], `invalid custom resource name '${key}' (use [a-z][a-z0-9_-]*)`, true);
    }
  }
}
