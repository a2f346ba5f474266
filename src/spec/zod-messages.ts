/**
 * zodErrorMap: zod's generic issues phrased the way an operator reads them (`expected a number, got a
 * string ('2x')`, `missing required key 'name'`). Plans and inventories validate with it.
 */
import type * as z from 'zod';

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `a string ('${v.length > 40 ? `${v.slice(0, 40)}…` : v}')`;
  if (typeof v === 'number') return `a number (${v})`;
  if (typeof v === 'boolean') return `a boolean (${v})`;
  return typeof v;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  record: 'a mapping',
};

/** zodErrorMap phrases zod's generic issues the way an operator reads them. */
export function zodErrorMap(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'invalid_union')) {
    const last = iss.path?.[iss.path.length - 1];
    return typeof last === 'string' ? `missing required key '${last}'` : 'missing value';
  }
  switch (iss.code) {
    case 'invalid_type': {
      if (typeof iss.input === 'number' && !Number.isFinite(iss.input)) return `must be a finite number (got ${iss.input})`;
      const expected = EXPECTED[iss.expected] ?? iss.expected;
      const got = describeValue(iss.input);
      const hint = iss.expected === 'string' && (typeof iss.input === 'number' || typeof iss.input === 'boolean') ? '; quote it' : '';
      return `expected ${expected}, got ${got}${hint}`;
    }
    case 'too_big': {
      const n = String(iss.maximum);
      if (iss.origin === 'array') return `at most ${n} items allowed`;
      if (iss.origin === 'string') return `at most ${n} characters allowed`;
      return `must be ${iss.inclusive === false ? 'less than' : 'at most'} ${n} (got ${String(iss.input)})`;
    }
    case 'too_small': {
      const n = String(iss.minimum);
      if (iss.origin === 'array') return Number(n) <= 1 ? 'must not be empty' : `at least ${n} items needed`;
      if (iss.origin === 'string') return Number(n) <= 1 ? 'must not be empty' : `at least ${n} characters needed`;
      return `must be ${iss.inclusive === false ? 'greater than' : 'at least'} ${n} (got ${String(iss.input)})`;
    }
    case 'invalid_value':
      return `must be ${iss.values.length === 1 ? String(iss.values[0]) : `one of ${iss.values.map(String).join(', ')}`} (got ${typeof iss.input === 'string' ? `'${iss.input}'` : describeValue(iss.input)})`;
    default:
      return undefined;
  }
}
