/**
 * SpecSource: one plan or inventory file parsed as YAML with its node positions, so that every issue
 * found later (by zod or by the cross-field checks) is reported as `file:line:col: path: message`.
 * Shared by plans (load.ts) and inventories (inventory.ts).
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import type * as z from 'zod';
import { SpecError, type SpecIssue } from '../errors.js';
import { fileIssue, MAX_SPEC_FILE_BYTES } from './read.js';
import { parsePlainYaml, plainYamlPositions } from './plain-yaml.js';
import { jsonPositions, lineCounterOf, locateOffset, parseJsonSpec, type PosNode } from './positions.js';
import { UNKNOWN_KEYS_MARK } from './schema.js';
import { unknownKeyMessage } from './suggest.js';

/** MAX_ALIAS_COUNT bounds YAML alias expansion (refuses "billion laughs" alias bombs). */
export const MAX_ALIAS_COUNT = 100;

/** PathSeg is one step of a document path: a mapping key or a list index. */
export type PathSeg = string | number;

/** formatPath renders a document path as `processes[0].resources.mem`. */
export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/**
 * SpecSource is one parsed YAML file: its document, line counter and the issues found so far. It turns
 * document paths into positions (the deepest node that exists on the path).
 */
export class SpecSource {
  /** issues collected for this file, in the order found (sorted by position on throw). */
  readonly issues: SpecIssue[] = [];
  /** warnings collected for this file. */
  readonly warnings: SpecIssue[] = [];

  private parsed?: { doc: Document.Parsed; lines: LineCounter };
  // the fast paths' positions (positions.ts), built on the first position asked; null: none to build
  private offsets?: { root: PosNode; lines: LineCounter } | null;

  private constructor(
    /** file is the path as given, for messages. */
    readonly file: string,
    parsed: { doc: Document.Parsed; lines: LineCounter } | undefined,
    /** data is the document as plain JS (aliases expanded). */
    readonly data: unknown,
    private readonly text: string,
    /** fast names the fast path that read the data, whose positions need no yaml document. */
    private readonly fast?: 'json' | 'plain',
  ) {
    this.parsed = parsed;
  }

  /** doc is the parsed YAML document (parsed on first use when the fast path read the data). */
  get doc(): Document.Parsed {
    return this.full().doc;
  }

  private get lines(): LineCounter {
    return this.full().lines;
  }

  private full(): { doc: Document.Parsed; lines: LineCounter } {
    if (!this.parsed) {
      const lines = new LineCounter();
      const doc = parseDocument(this.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
      this.parsed = { doc, lines };
    }
    return this.parsed;
  }

  /**
   * SpecSource.parse parses YAML text. Throws SpecError for text that is not usable: binary, too big,
   * YAML syntax errors (all of them), duplicate keys, alias bombs, empty documents and non-mapping tops.
   */
  static parse(text: string, file: string, what: 'plan' | 'inventory'): SpecSource {
    if (Buffer.byteLength(text, 'utf8') > MAX_SPEC_FILE_BYTES) {
      throw new SpecError([fileIssue(file, `file is larger than 4 MiB; refusing to read it as a ${what}`)]);
    }
    if (text.slice(0, 8192).includes('\u0000')) {
      throw new SpecError([fileIssue(file, `not a text file (NUL byte); expected a YAML ${what}`)]);
    }
    // Fast paths: JSON (what a script exporting a CMDB writes) and plain YAML (what generators write)
    // are read without building a yaml document; positions come from a second, lazy pass over the text
    // when an issue or a group needs one (positions.ts).
    const json = parseJsonSpec(text);
    if (json !== undefined) return new SpecSource(file, undefined, json, text, 'json');
    const plain = parsePlainYaml(text);
    if (plain !== undefined) return new SpecSource(file, undefined, plain, text, 'plain');
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
    const pos = (offset: number) => lines.linePos(offset);
    if (doc.errors.length > 0) {
      throw new SpecError(
        doc.errors.map((e) => {
          const { line, col } = pos(e.pos[0]);
          let message = e.message.split('\n')[0] ?? e.message;
          if (e.code === 'MULTIPLE_DOCS') message = `a ${what} file holds one YAML document; found more than one (---)`;
          if (e.code === 'DUPLICATE_KEY') {
            const key = /^\s*("[^"]*"|'[^']*'|[^:\n]+?)\s*:/.exec(text.slice(e.pos[0]))?.[1];
            message = key ? `duplicate key '${key.replace(/^["']|["']$/g, '')}'` : 'duplicate key';
          }
          return { file, line, col, path: '', message };
        }),
      );
    }
    const empty =
      what === 'plan' ? "empty plan: expected a mapping with at least 'name'" : "empty inventory: expected a mapping with 'idcs'";
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === undefined))) {
      throw new SpecError([fileIssue(file, empty)]);
    }
    if (!isMap(contents)) {
      const { line, col } = contents.range ? pos(contents.range[0]) : { line: 1, col: 1 };
      const got = isSeq(contents) ? 'a list' : isScalar(contents) ? `a ${typeof contents.value}` : 'something else';
      throw new SpecError([{ file, line, col, path: '', message: `expected a mapping at the top level of the ${what}, got ${got}` }]);
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const message = /alias/i.test(msg)
        ? `refusing to expand YAML aliases: more than ${MAX_ALIAS_COUNT} expansions (an alias bomb?)`
        : `cannot read YAML: ${msg}`;
      throw new SpecError([fileIssue(file, message)]);
    }
    return new SpecSource(file, { doc, lines }, data, text);
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** locate finds the deepest node on `path`; `key` is the key node of the last segment when it exists. */
  locate(path: readonly PathSeg[]): { node: Node | null; key: Node | null; complete: boolean } {
    let cur: unknown = this.doc.contents;
    let key: Node | null = null;
    let last: Node | null = (this.doc.contents as Node | null) ?? null;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      cur = this.resolve(cur);
      key = null;
      if (isMap(cur)) {
        const pair = (cur.items as Pair[]).find((p) => {
          const k = isScalar(p.key) ? p.key.value : p.key;
          return String(k) === String(seg);
        });
        if (!pair) return { node: last, key: null, complete: false };
        key = (pair.key as Node | null) ?? null;
        const value = pair.value as Node | null;
        cur = value;
        if (value && (value as Node).range) last = value;
        else if (key) last = key;
      } else if (isSeq(cur) && typeof seg === 'number') {
        const item = cur.items[seg] as Node | undefined;
        if (!item) return { node: last, key: null, complete: false };
        cur = item;
        last = item;
      } else {
        return { node: last, key: null, complete: false };
      }
    }
    return { node: last, key, complete: true };
  }

  /** position is the 1-based line and column of a node (1:1 when it has no range). */
  position(node: Node | null | undefined): { line: number; col: number } {
    if (!node?.range) return { line: 1, col: 1 };
    return this.lines.linePos(node.range[0]);
  }

  /** positionOf is the position of the node at `path` (or of its key when atKey), or the deepest existing node. */
  positionOf(path: readonly PathSeg[], atKey = false): { line: number; col: number } {
    if (!this.parsed && this.fast) {
      if (this.offsets === undefined) {
        const root = this.fast === 'json' ? jsonPositions(this.text) : plainYamlPositions(this.text);
        this.offsets = root ? { root, lines: lineCounterOf(this.text) } : null;
      }
      const offset = this.offsets ? locateOffset(this.offsets.root, path, atKey) : undefined;
      if (offset !== undefined && this.offsets) return this.offsets.lines.linePos(offset);
    }
    const found = this.locate(path);
    return this.position(atKey && found.key ? found.key : found.node);
  }

  /** issue records a problem at `path` (at the key node when atKey). */
  issue(path: readonly PathSeg[], message: string, atKey = false): void {
    const { line, col } = this.positionOf(path, atKey);
    this.issues.push({ file: this.file, line, col, path: formatPath(path), message });
  }

  /** warn records a warning at `path`. */
  warn(path: readonly PathSeg[], message: string): void {
    const { line, col } = this.positionOf(path, true);
    this.warnings.push({ file: this.file, line, col, path: formatPath(path), message });
  }

  /** addZodIssues maps zod issues to positioned SpecIssues (unknown keys point at each key, with did-you-mean). */
  addZodIssues(issues: readonly z.core.$ZodIssue[]): void {
    for (const iss of issues) {
      const path = iss.path.filter((p): p is PathSeg => typeof p !== 'symbol');
      if (iss.code === 'unrecognized_keys') {
        const known = iss.message.startsWith(UNKNOWN_KEYS_MARK)
          ? iss.message.slice(UNKNOWN_KEYS_MARK.length).split('\u0001')
          : [];
        for (const k of iss.keys) this.issue([...path, k], unknownKeyMessage(k, known), true);
      } else if (iss.code === 'invalid_key') {
        this.issue(path, iss.issues[0]?.message ?? iss.message, true);
      } else if (iss.code === 'invalid_union' && iss.errors.length > 0 && iss.message === 'Invalid input') {
        this.issue(path, 'value does not match any allowed form');
      } else {
        this.issue(path, iss.message);
      }
    }
  }

  /** throwIfIssues throws a SpecError with every issue, sorted by position, when there are any. */
  throwIfIssues(): void {
    if (this.issues.length === 0) return;
    const seen = new Set<string>();
    const unique = this.issues.filter((i) => {
      const k = `${i.line}:${i.col}:${i.path}:${i.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    unique.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new SpecError(unique);
  }
}
