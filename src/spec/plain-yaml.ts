/**
 * A fast reader for the plain subset of YAML that generated inventories and plans use: block
 * mappings and sequences, one-line flow collections, plain and simple quoted scalars, comments.
 * It returns the same data as `yaml`'s parseDocument().toJS() (YAML 1.2 core schema) or undefined
 * for anything outside the subset — anchors, tags, block scalars, escapes, multi-line scalars,
 * duplicate keys, several documents, tabs — and the caller then uses the full parser. A 10k-agent
 * inventory reads ~10× faster this way. plainYamlPositions reads the same text again, when a position
 * is needed, recording where each node starts (positions.ts).
 */
import type { PosNode } from './positions.js';

/** PlainYamlValue is what the plain subset can hold. */
export type PlainYamlValue = null | boolean | number | string | PlainYamlValue[] | { [key: string]: PlainYamlValue };

class Bail extends Error {}

const NULL_RE = /^(?:~|null|Null|NULL)$/;
const BOOL_RE = /^(?:true|True|TRUE|false|False|FALSE)$/;
const INT_RE = /^[-+]?[0-9]+$/;
const FLOAT_RE = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.\-/]*$/;
const INDICATOR_START = /^[-?:,[\]{}#&*!|>'"%@`]/;

/** resolvePlain resolves a plain scalar as the YAML 1.2 core schema does, bailing on the rare forms. */
function resolvePlain(s: string): PlainYamlValue {
  // a letter other than n, t, f (any case) starts no null, boolean, number, .inf or 0x form, nor an indicator
  const c = s.charCodeAt(0) | 0x20;
  if (c >= 0x61 && c <= 0x7a && c !== 0x6e && c !== 0x74 && c !== 0x66) {
    if (s.includes(': ') || s.includes(' #') || s.endsWith(':')) throw new Bail();
    return s;
  }
  if (s === '' || NULL_RE.test(s)) return null;
  if (BOOL_RE.test(s)) return s[0] === 't' || s[0] === 'T';
  if (INT_RE.test(s)) {
    const n = Number(s);
    if (!Number.isSafeInteger(n)) throw new Bail();
    return n;
  }
  if (FLOAT_RE.test(s)) return Number(s);
  if (INDICATOR_START.test(s) || s.includes(': ') || s.includes(' #') || s.endsWith(':') || /^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/.test(s) || /^0[ox]/.test(s)) {
    throw new Bail();
  }
  return s;
}

/** quoted reads a quoted scalar starting at s[i]; returns the value and the index after it. */
function quoted(s: string, i: number): [string, number] {
  const q = s[i];
  const end = s.indexOf(q ?? '"', i + 1);
  if (end < 0) throw new Bail();
  const body = s.slice(i + 1, end);
  if (q === '"' && body.includes('\\')) throw new Bail();
  if (q === "'" && s[end + 1] === "'") throw new Bail();
  return [body, end + 1];
}

function key(raw: string): string {
  if (!KEY_RE.test(raw) || NULL_RE.test(raw) || BOOL_RE.test(raw)) throw new Bail();
  return raw;
}

function setKey(obj: Record<string, PlainYamlValue>, k: string, v: PlainYamlValue): void {
  if (Object.prototype.hasOwnProperty.call(obj, k) || k === '__proto__') throw new Bail();
  obj[k] = v;
}

/** flow parses a one-line flow collection or scalar at s[i]; returns the value and the index after it. */
function flow(s: string, i: number): [PlainYamlValue, number] {
  while (s[i] === ' ') i++;
  const c = s[i];
  if (c === '{') {
    const obj: Record<string, PlainYamlValue> = {};
    i++;
    for (;;) {
      while (s[i] === ' ') i++;
      if (s[i] === '}') return [obj, i + 1];
      const colon = s.indexOf(':', i);
      if (colon < 0) throw new Bail();
      const k = key(s.slice(i, colon).trim());
      if (s[colon + 1] !== ' ') throw new Bail();
      const [v, j] = flow(s, colon + 2);
      setKey(obj, k, v);
      i = j;
      while (s[i] === ' ') i++;
      if (s[i] === ',') i++;
      else if (s[i] !== '}') throw new Bail();
    }
  }
  if (c === '[') {
    const arr: PlainYamlValue[] = [];
    i++;
    for (;;) {
      while (s[i] === ' ') i++;
      if (s[i] === ']') return [arr, i + 1];
      const [v, j] = flow(s, i);
      arr.push(v);
      i = j;
      while (s[i] === ' ') i++;
      if (s[i] === ',') i++;
      else if (s[i] !== ']') throw new Bail();
    }
  }
  if (c === '"' || c === "'") return quoted(s, i);
  let j = i;
  while (j < s.length && s[j] !== ',' && s[j] !== ']' && s[j] !== '}') j++;
  const raw = s.slice(i, j).trim();
  if (raw === '' || raw.includes(':') || raw.includes('#')) throw new Bail();
  return [resolvePlain(raw), j];
}

/** inlineValue parses what follows `key: ` or `- ` on one line (a scalar or a flow collection). */
function inlineValue(rest: string): PlainYamlValue {
  const c = rest[0];
  if (c === '{' || c === '[' || c === '"' || c === "'") {
    const [v, j] = flow(rest, 0);
    if (rest.slice(j).trim() !== '') throw new Bail();
    return v;
  }
  return resolvePlain(rest);
}

interface Line {
  indent: number;
  text: string;
  /** offset of the line's first non-space character in the document. */
  offset: number;
}

/** stripComment removes a trailing comment outside quotes and trims the end. */
function stripComment(s: string): string {
  if (!s.includes('#')) return s.trimEnd();
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = undefined;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s[{,:]/.test(s[i - 1] ?? '')) q = c;
    } else if (c === '#' && (i === 0 || s[i - 1] === ' ')) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

/** parsePlainYaml returns the document's data, or undefined when the text is outside the plain subset. */
export function parsePlainYaml(text: string): PlainYamlValue | undefined {
  return readPlain(text, undefined);
}

/**
 * plainYamlPositions is the PosNode tree of a plain YAML document (one parsePlainYaml reads): exact
 * offsets for every block node, key and one-line value; the entries of one-line flow collections and
 * empty values are left unknown (the full yaml document answers for them). Undefined outside the subset.
 */
export function plainYamlPositions(text: string): PosNode | undefined {
  const root: PosNode = { at: -1 };
  return readPlain(text, root) === undefined ? undefined : root;
}

/** readPlain parses the plain subset; with `root`, it also records where every node starts into it. */
function readPlain(text: string, root: PosNode | undefined): PlainYamlValue | undefined {
  if (text.includes('\t') || text.includes('\r') || /^(?:---|\.\.\.)/m.test(text) || /^%/m.test(text)) return undefined;
  // the lines are read one ahead, as the parser consumes them (none is kept: a 10k-agent inventory
  // has 110k lines, and keeping them all made the garbage collector copy them)
  let scan = 0;
  const readLine = (): Line | undefined => {
    while (scan <= text.length) {
      const start = scan;
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      scan = end + 1;
      const body = stripComment(text.slice(start, end));
      const t = body.trimStart();
      if (t !== '') return { indent: body.length - t.length, text: t, offset: start + body.length - t.length };
    }
    return undefined;
  };
  /** cur is the line the parser is at (undefined at the end of the text). */
  let cur = readLine();
  if (!cur) return undefined;
  // recording: an inline value starts at its first character; a flow collection's entries are not recorded
  const inlineAt = (node: PosNode | undefined, rest: string, offset: number): void => {
    if (!node) return;
    node.at = offset;
    if (rest.startsWith('{') || rest.startsWith('[')) node.opaque = true;
  };

  const block = (indent: number, node: PosNode | undefined): PlainYamlValue => {
    const first = cur;
    if (!first || first.indent !== indent) throw new Bail();
    if (first.text === '-' || first.text.startsWith('- ')) return sequence(indent, node);
    return mapping(indent, node);
  };

  const valueAfterKey = (rest: string, restAt: number, indent: number, node: PosNode | undefined): PlainYamlValue => {
    if (rest !== '') {
      inlineAt(node, rest, restAt);
      return inlineValue(rest);
    }
    const next = cur;
    if (!next) return null;
    if (next.indent > indent) return block(next.indent, node);
    if (next.indent === indent && (next.text === '-' || next.text.startsWith('- '))) return sequence(indent, node);
    return null;
  };

  const entry = (obj: Record<string, PlainYamlValue>, text: string, textAt: number, indent: number, node: PosNode | undefined): void => {
    const colon = text.indexOf(': ');
    const endColon = text.endsWith(':') ? text.length - 1 : -1;
    const at = colon >= 0 ? colon : endColon;
    if (at <= 0) throw new Bail();
    const k = key(text.slice(0, at));
    const after = text.slice(at + 1);
    const rest = after.trim();
    const child: PosNode | undefined = node ? { at: -1 } : undefined;
    const restAt = node ? textAt + at + 1 + (after.length - after.trimStart().length) : -1;
    setKey(obj, k, valueAfterKey(rest, restAt, indent, child));
    if (node && child) node.keys?.set(k, { key: textAt, value: child });
  };

  const mapping = (indent: number, node: PosNode | undefined): PlainYamlValue => {
    const obj: Record<string, PlainYamlValue> = {};
    if (node) {
      node.at = cur?.offset ?? -1;
      node.keys = new Map();
    }
    while (cur) {
      const line = cur;
      if (line.indent < indent) break;
      if (line.indent > indent || line.text.startsWith('- ') || line.text === '-') throw new Bail();
      cur = readLine();
      entry(obj, line.text, line.offset, indent, node);
    }
    return obj;
  };

  const sequence = (indent: number, node: PosNode | undefined): PlainYamlValue => {
    const arr: PlainYamlValue[] = [];
    if (node) {
      node.at = cur?.offset ?? -1;
      node.items = [];
    }
    while (cur) {
      const line = cur;
      if (line.indent !== indent || !(line.text === '-' || line.text.startsWith('- '))) {
        if (line.indent > indent) throw new Bail();
        break;
      }
      cur = readLine();
      const item: PosNode | undefined = node ? { at: -1 } : undefined;
      node?.items?.push(item as PosNode);
      const rest = line.text.slice(1).trim();
      const restAt = line.offset + (line.text.length - line.text.slice(1).trimStart().length);
      if (rest === '') {
        const next = cur;
        arr.push(next && next.indent > indent ? block(next.indent, item) : null);
      } else if (/^[A-Za-z_][A-Za-z0-9_.\-/]*:(?: |$)/.test(rest)) {
        // `- key: value` opens a mapping whose other keys sit at the column of `key`.
        const inner = indent + (line.text.length - line.text.slice(1).trimStart().length);
        const obj: Record<string, PlainYamlValue> = {};
        if (item) {
          item.at = restAt;
          item.keys = new Map();
        }
        entry(obj, rest, restAt, inner, item);
        while (cur) {
          const l = cur;
          if (l.indent !== inner || l.text.startsWith('- ') || l.text === '-') {
            if (l.indent > inner) throw new Bail();
            break;
          }
          cur = readLine();
          entry(obj, l.text, l.offset, inner, item);
        }
        arr.push(obj);
      } else {
        inlineAt(item, rest, restAt);
        arr.push(inlineValue(rest));
      }
    }
    return arr;
  };

  try {
    const first = cur;
    if (first.indent !== 0 || first.text.startsWith('- ') || first.text.startsWith('{') || first.text.startsWith('[')) return undefined;
    const data = mapping(0, root);
    return cur === undefined ? data : undefined;
  } catch (e) {
    if (e instanceof Bail) return undefined;
    throw e;
  }
}
