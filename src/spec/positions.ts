/**
 * Positions without the yaml library's document: for the two fast paths of spec loading (JSON read
 * by JSON.parse, plain YAML read by plain-yaml.ts), a tree of node offsets built only when an issue or
 * a group needs a position, giving the same offsets as the yaml document's node ranges. Where the tree
 * cannot tell (inside a one-line flow collection of plain YAML, an empty value), it says so and
 * SpecSource parses the full document instead.
 */
import { LineCounter } from 'yaml';
import type { PathSeg } from './source.js';

/**
 * PosNode is where one node of a document starts (`at`, an offset into the text; -1 when unknown) and,
 * for collections, where its entries are. `opaque` marks a collection whose entries were not recorded.
 */
export interface PosNode {
  at: number;
  keys?: Map<string, { key: number; value: PosNode }>;
  items?: PosNode[];
  opaque?: boolean;
}

/**
 * locateOffset is the offset SpecSource.positionOf reports for `path` (of the key of its last segment
 * when atKey and the key exists, else of the deepest node that exists on the path, as
 * SpecSource.locate finds it), or undefined when the tree cannot tell.
 */
export function locateOffset(root: PosNode, path: readonly PathSeg[], atKey: boolean): number | undefined {
  let cur = root;
  let key = -1;
  for (let n = 0; n < path.length; n++) {
    const seg = path[n] as PathSeg;
    key = -1;
    if (cur.at < 0 || cur.opaque) return undefined;
    const last = cur.at;
    if (cur.keys) {
      const e = cur.keys.get(String(seg));
      if (!e) return last;
      key = e.key;
      cur = e.value;
    } else if (cur.items && typeof seg === 'number') {
      const item = cur.items[seg];
      if (!item) return last;
      cur = item;
    } else {
      return last;
    }
  }
  if (atKey && key >= 0) return key;
  return cur.at < 0 ? undefined : cur.at;
}

/** lineCounterOf indexes the line starts of a text, as the yaml parser's LineCounter does while parsing. */
export function lineCounterOf(text: string): LineCounter {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  return lines;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;

/** stringEnd is the index after the JSON string that opens at text[i]. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return text.length;
}

/**
 * parseJsonSpec reads a plan or inventory written as JSON (which is YAML) with JSON.parse: the data the
 * yaml library would give, or undefined when the text is not a JSON object or holds what YAML reads
 * otherwise (duplicate keys, which JSON.parse lets the last win; `<<` merge keys; `__proto__`) — the
 * caller then parses it as YAML, which reports those.
 */
export function parseJsonSpec(text: string): Record<string, unknown> | undefined {
  let start = 0;
  while (start < text.length && /\s/.test(text[start] ?? '')) start++;
  if (text.charCodeAt(start) !== OPEN_BRACE) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  // Every key of the text is followed by a colon outside strings; a duplicate key shows as fewer keys
  // in the data than colons in the text.
  let colons = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) i = stringEnd(text, i) - 1;
    else if (c === COLON) colons++;
  }
  let keys = 0;
  let odd = false;
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    for (const k in v) {
      keys++;
      if (k === '__proto__' || k === '<<') odd = true;
      walk((v as Record<string, unknown>)[k]);
    }
  };
  walk(data);
  return keys === colons && !odd ? (data as Record<string, unknown>) : undefined;
}

/**
 * jsonPositions builds the PosNode tree of a JSON text (valid JSON: parseJsonSpec accepted it); undefined
 * when it nests too deep to walk.
 */
export function jsonPositions(text: string): PosNode | undefined {
  let i = 0;
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const value = (): PosNode => {
    ws();
    const at = i;
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACE) {
      const keys = new Map<string, { key: number; value: PosNode }>();
      i++;
      ws();
      if (text.charCodeAt(i) === CLOSE_BRACE) {
        i++;
        return { at, keys };
      }
      for (;;) {
        ws();
        const keyAt = i;
        i = stringEnd(text, i);
        const raw = text.slice(keyAt + 1, i - 1);
        const k = raw.includes('\\') ? (JSON.parse(text.slice(keyAt, i)) as string) : raw;
        ws();
        i++; // the colon
        const v = value();
        if (!keys.has(k)) keys.set(k, { key: keyAt, value: v });
        ws();
        if (text.charCodeAt(i++) !== COMMA) return { at, keys };
      }
    }
    if (c === OPEN_BRACKET) {
      const items: PosNode[] = [];
      i++;
      ws();
      if (text.charCodeAt(i) === CLOSE_BRACKET) {
        i++;
        return { at, items };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text.charCodeAt(i++) !== COMMA) return { at, items };
      }
    }
    if (c === QUOTE) {
      i = stringEnd(text, i);
      return { at };
    }
    while (i < text.length) {
      const d = text.charCodeAt(i);
      if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
      i++;
    }
    return { at };
  };
  try {
    return value();
  } catch (e) {
    if (e instanceof RangeError) return undefined; // too deep for the stack: the yaml document answers
    throw e;
  }
}
