/**
 * Placement constraints: `rack != r9`, `cpu_model == Xeon-6248`, `zone in (a, b)`, `gen >= 3`,
 * `host ~ ^web-[0-9]+$`. Parsed once at load time; matched by the scheduler against agent attributes.
 */
import type { Constraint, ConstraintOp } from '../scheduler/types.js';
import { SpecValueError } from './units.js';

/** MAX_REGEX_LENGTH bounds `~` patterns: long patterns are where catastrophic backtracking hides. */
export const MAX_REGEX_LENGTH = 256;

/** ATTRIBUTE_NAME_RE is what an attribute name in a constraint (and an inventory attribute key) may look like. */
export const ATTRIBUTE_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

const OPS_HINT = 'use ==, !=, <, <=, >, >=, in, not in or ~';
const CONSTRAINT_RE = /^([A-Za-z_][A-Za-z0-9_.-]*)\s*(==|!=|<=|>=|<|>|~|not\s+in(?![A-Za-z0-9_])|in(?![A-Za-z0-9_]))\s*([\s\S]*)$/;

function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'")))) {
    return t.slice(1, -1);
  }
  return t;
}

function parseList(raw: string, source: string): string[] {
  const t = raw.trim();
  const open = t[0];
  const close = open === '(' ? ')' : open === '[' ? ']' : undefined;
  if (!close || !t.endsWith(close)) {
    throw new SpecValueError(`invalid constraint '${source}': expected a list after 'in', e.g. (a, b) or [a, b]`);
  }
  const inner = t.slice(1, -1).trim();
  if (inner === '') throw new SpecValueError(`invalid constraint '${source}': the list is empty`);
  const items = inner.split(',').map(unquote);
  if (items.some((i) => i === '')) throw new SpecValueError(`invalid constraint '${source}': empty item in the list`);
  return items;
}

/**
 * parseConstraint parses one constraint string into a Constraint. Throws SpecValueError with a message
 * that says what is wrong (missing operator, empty value, bad list, regex that does not compile or is
 * longer than 256 characters).
 */
export function parseConstraint(s: string): Constraint {
  if (typeof s !== 'string') throw new SpecValueError(`invalid constraint ${JSON.stringify(s)}: expected a string such as "rack != r9"`);
  const source = s.trim();
  if (source === '') throw new SpecValueError('empty constraint (expected e.g. "rack != r9")');
  const m = CONSTRAINT_RE.exec(source);
  if (!m) {
    const attr = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(source);
    if (!attr) throw new SpecValueError(`invalid constraint '${source}': expected an attribute name first, e.g. "rack != r9"`);
    const rest = source.slice(attr[0].length).trim();
    if (rest === '') throw new SpecValueError(`invalid constraint '${source}': missing operator and value (${OPS_HINT})`);
    const op = /^\S+/.exec(rest)?.[0] ?? rest;
    throw new SpecValueError(`invalid constraint '${source}': unknown operator '${op}' (${OPS_HINT})`);
  }
  const attribute = m[1] ?? '';
  const rawOp = (m[2] ?? '').replace(/\s+/g, ' ');
  const op = rawOp as ConstraintOp;
  const rest = (m[3] ?? '').trim();
  if (rest === '') throw new SpecValueError(`invalid constraint '${source}': missing value after '${op}'`);
  if (op === 'in' || op === 'not in') {
    return { attribute, op, value: parseList(rest, source), source };
  }
  if (op === '~') {
    const re = unquote(rest);
    if (re.length > MAX_REGEX_LENGTH) {
      throw new SpecValueError(`invalid constraint '${source.slice(0, 40)}…': regex is ${re.length} characters (limit ${MAX_REGEX_LENGTH})`);
    }
    try {
      new RegExp(re);
    } catch (e) {
      throw new SpecValueError(`invalid constraint '${source}': regex does not compile: ${(e as Error).message}`);
    }
    return { attribute, op, value: re, source };
  }
  if (/^[=<>!~]/.test(rest)) {
    throw new SpecValueError(`invalid constraint '${source}': unknown operator '${op}${rest[0] ?? ''}' (${OPS_HINT})`);
  }
  const value = unquote(rest);
  if (value === '') throw new SpecValueError(`invalid constraint '${source}': missing value after '${op}'`);
  return { attribute, op, value, source };
}

/** matchConstraint is the scheduler's matcher, re-exported: one definition of constraint semantics. */
export { matchConstraint } from '../scheduler/constraints-match.js';
