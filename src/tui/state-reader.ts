/**
 * readStateRecords parses a state file record by record into a CoreBuilder, so the whole document
 * (≈90 MB of objects for 100k tasks) never exists at once: the file's bytes are scanned for the
 * members of `agents` and `tasks` (and of the job and deployment tables), and each member alone is decoded and
 * parsed. Anything it does not expect (other shapes, repeated top-level keys, malformed JSON) makes
 * it give up, and the caller falls back to JSON.parse of the whole text, which then behaves (and
 * fails) as before.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { applyJournalSync, hasJournal } from '../state/read-sync.js';
import type { EventRecord } from '../state/types.js';
import { DEPLOYMENTS_TABLE } from './deployments-model.js';
import { isJobTable, type JobTableName } from './jobs-model.js';
import { computeCore, CoreBuilder, parseStateText, type DeclaredAgent, type ModelCore } from './model-core.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

class GiveUp extends Error {}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Bytes is a window over a JSON document: the whole of it in a Buffer, or a file read in chunks.
 * Positions are absolute; bytes before `keep` may be dropped when more are read.
 */
class Bytes {
  /** buf holds the bytes from absolute position win, len of them (read them directly below win + len). */
  buf: Buffer;
  win = 0;
  len: number;
  private eof: boolean;
  keep = 0;

  constructor(
    source: Buffer | number,
    private readonly chunk = 1 << 20,
  ) {
    if (typeof source === 'number') {
      this.fd = source;
      this.buf = Buffer.allocUnsafe(chunk);
      this.len = 0;
      this.eof = false;
    } else {
      this.buf = source;
      this.len = source.length;
      this.eof = true;
    }
  }

  private fd = -1;

  /** have makes sure the byte at abs is in the window; false past the end. */
  have(abs: number): boolean {
    while (abs >= this.win + this.len) {
      if (this.eof) return false;
      this.fill();
    }
    return true;
  }

  private fill(): void {
    const drop = this.keep - this.win;
    if (drop > 0) {
      this.buf.copy(this.buf, 0, drop, this.len);
      this.len -= drop;
      this.win += drop;
    }
    if (this.len === this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.chunk, 2 * this.buf.length));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    const n = readSync(this.fd, this.buf, this.len, this.buf.length - this.len, null);
    if (n === 0) this.eof = true;
    this.len += n;
  }

  /** at returns the byte at abs, or -1 past the end. */
  at(abs: number): number {
    return this.have(abs) ? this.buf[abs - this.win]! : -1;
  }

  /** indexOf returns the absolute position of the next byte c at or after abs, or -1. */
  indexOf(c: number, abs: number): number {
    for (let from = abs; ; from = this.win + this.len) {
      if (!this.have(from)) return -1;
      // (bytes past len are stale: a hit there means "not in the window yet")
      const i = this.buf.indexOf(c, from - this.win);
      if (i >= 0 && i < this.len) return this.win + i;
    }
  }

  /** text decodes [start, end) (start must be at or after keep). */
  text(start: number, end: number): string {
    return this.buf.toString('utf8', start - this.win, end - this.win);
  }
}

/** Scanner walks one JSON document, parsing the values it is asked for one at a time. */
class Scanner {
  pos = 0;
  constructor(private readonly b: Bytes) {}

  ws(): number {
    for (;;) {
      const c = this.b.at(this.pos);
      if (c < 0 || !isWs(c)) return c;
      this.pos++;
    }
  }

  expect(c: number): void {
    if (this.ws() !== c) throw new GiveUp();
    this.pos++;
  }

  /** stringEnd returns the position just past the string starting at i (a quote). */
  stringEnd(i: number): number {
    const b = this.b;
    let j = i + 1;
    for (;;) {
      const q = b.indexOf(QUOTE, j);
      if (q < 0) throw new GiveUp();
      let k = q - 1;
      while (k > i && b.at(k) === BACKSLASH) k--;
      if ((q - 1 - k) % 2 === 0) return q + 1;
      j = q + 1;
    }
  }

  /** key reads `"name" :` and returns the name. */
  key(): string {
    if (this.ws() !== QUOTE) throw new GiveUp();
    this.b.keep = this.pos;
    const end = this.stringEnd(this.pos);
    const k = JSON.parse(this.b.text(this.pos, end)) as string;
    this.pos = end;
    this.expect(0x3a);
    return k;
  }

  /** valueEnd returns the position just past the value starting at the current position. */
  valueEnd(): number {
    const b = this.b;
    const c = this.ws();
    b.keep = this.pos;
    if (c === QUOTE) return this.stringEnd(this.pos);
    if (c === 0x7b || c === 0x5b) {
      let depth = 0;
      for (let i = this.pos; ; i++) {
        if (i >= b.win + b.len && !b.have(i)) throw new GiveUp();
        const x = b.buf[i - b.win]!;
        if (x === QUOTE) i = this.stringEnd(i) - 1;
        else if (x === 0x7b || x === 0x5b) depth++;
        else if (x === 0x7d || x === 0x5d) {
          if (--depth === 0) return i + 1;
        }
      }
    }
    let i = this.pos;
    for (let x = b.at(i); x >= 0 && !isWs(x) && x !== 0x2c && x !== 0x7d && x !== 0x5d; x = b.at(++i));
    if (i === this.pos) throw new GiveUp();
    return i;
  }

  /** value parses the value at the current position. */
  value(): unknown {
    const end = this.valueEnd();
    const v = JSON.parse(this.b.text(this.pos, end)) as unknown;
    this.pos = end;
    this.b.keep = end;
    return v;
  }

  /** members calls fn for each `"key": value` of the object at the current position. */
  members(fn: (key: string) => void): void {
    this.expect(0x7b);
    if (this.ws() === 0x7d) {
      this.pos++;
      return;
    }
    for (;;) {
      fn(this.key());
      const c = this.ws();
      this.pos++;
      if (c === 0x7d) return;
      if (c !== 0x2c) throw new GiveUp();
    }
  }
}

/**
 * coreFromStateBuffer builds the compact model record by record from a state file's bytes (a
 * Buffer, or an open file descriptor read in chunks, so not even the text is held whole); it
 * returns undefined when the document is not the plain shape it expects (the caller then parses it
 * whole).
 */
export function coreFromStateBuffer(buf: Buffer | number, declared: readonly DeclaredAgent[] = [], chunk = 1 << 20): ModelCore | undefined {
  const s = new Scanner(new Bytes(buf, chunk));
  const b = new CoreBuilder();
  const seen = new Set<string>();
  let events: unknown;
  try {
    s.members((key) => {
      if (seen.has(key)) throw new GiveUp();
      seen.add(key);
      if (key === 'agents' || key === 'tasks' || isJobTable(key) || key === DEPLOYMENTS_TABLE) {
        const c = s.ws();
        if (c !== 0x7b) throw new GiveUp();
        s.members((k) => {
          const rec = s.value();
          if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new GiveUp();
          if (key === 'agents') b.addAgent(k, rec as never);
          else if (key === 'tasks') b.addTask(k, rec as never);
          else if (key === DEPLOYMENTS_TABLE) b.deploymentTables.add(k, rec);
          else b.jobTables.add(key as JobTableName, k, rec);
        });
      } else if (key === 'events') events = s.value();
      else s.value();
    });
    if (s.ws() !== -1) throw new GiveUp();
    if (!seen.has('agents') || !seen.has('tasks') || !Array.isArray(events)) throw new GiveUp();
    return b.finish(events as EventRecord[], declared);
  } catch (err) {
    if (err instanceof GiveUp || err instanceof SyntaxError || err instanceof TypeError) return undefined;
    throw err;
  }
}

/**
 * coreFromStateFile builds the compact model from a state file (missing: an empty state): record by
 * record, reading the file in chunks, when it can; else by parsing the whole text (which throws as
 * readStateFile does on a corrupt file).
 */
export function coreFromStateFile(file: string, declared: readonly DeclaredAgent[] = [], chunk = 1 << 20): ModelCore {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return computeCore({ version: 2, agents: {}, tasks: {}, plans: {}, events: [] }, declared);
  }
  try {
    // a snapshot followed by a journal is read whole and the journal applied on top
    const core = hasJournal(path.dirname(file)) ? undefined : coreFromStateBuffer(fd, declared, chunk);
    if (core) return core;
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return computeCore(applyJournalSync(path.dirname(file), parseStateText(buf.toString('utf8', 0, got), file)), declared);
  } finally {
    closeSync(fd);
  }
}
