/**
 * Evaluation of attribute constraints (`rack != r9`, `zone in (a, b)`, `cpu_model ~ ^Xeon`) against an
 * agent's attributes.
 */
import type { Constraint } from './types.js';

const regexCache = new Map<string, RegExp | null>();
const REGEX_CACHE_LIMIT = 1000;

function compiledRegex(source: string): RegExp | null {
  let re = regexCache.get(source);
  if (re === undefined) {
    try {
      re = new RegExp(source);
    } catch {
      re = null;
    }
    if (regexCache.size >= REGEX_CACHE_LIMIT) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}

function singleValue(value: string | string[]): string {
  return Array.isArray(value) ? value.join(', ') : value;
}

function listValue(value: string | string[]): string[] {
  if (Array.isArray(value)) return value;
  return value
    .replace(/^\s*\(|\)\s*$/g, '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function asFiniteNumber(s: string): number | undefined {
  if (s.trim() === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** compareAttributeValues orders two values numerically when both parse as finite numbers, else lexically. */
export function compareAttributeValues(a: string, b: string): number {
  const na = asFiniteNumber(a);
  const nb = asFiniteNumber(b);
  if (na !== undefined && nb !== undefined) return na === nb ? 0 : na < nb ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/**
 * matchConstraint says whether attributes satisfy a constraint: `==`/`!=` compare strings, `< <= > >=`
 * compare numerically when both sides are finite numbers else lexically, `in`/`not in` test list
 * membership, `~` tests the value as a regex source (an invalid regex matches nothing). A missing
 * attribute matches only `!=` and `not in`.
 */
export function matchConstraint(c: Constraint, attrs: Record<string, string>): boolean {
  const actual = Object.prototype.hasOwnProperty.call(attrs, c.attribute) ? attrs[c.attribute] : undefined;
  if (actual === undefined) return c.op === '!=' || c.op === 'not in';
  switch (c.op) {
    case '==':
      return actual === singleValue(c.value);
    case '!=':
      return actual !== singleValue(c.value);
    case '<':
      return compareAttributeValues(actual, singleValue(c.value)) < 0;
    case '<=':
      return compareAttributeValues(actual, singleValue(c.value)) <= 0;
    case '>':
      return compareAttributeValues(actual, singleValue(c.value)) > 0;
    case '>=':
      return compareAttributeValues(actual, singleValue(c.value)) >= 0;
    case 'in':
      return listValue(c.value).includes(actual);
    case 'not in':
      return !listValue(c.value).includes(actual);
    case '~':
      return compiledRegex(singleValue(c.value))?.test(actual) ?? false;
    default:
      return false;
  }
}
