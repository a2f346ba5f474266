/**
 * readStateDataSync reads a file state's records without opening a backend (no lock, no writes,
 * no migration): the snapshot and its journal's complete lines. The dashboard's worker uses it.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { StateError } from '../errors.js';
import { JOURNAL_RE, journalName, parseJournal } from './journal.js';
import type { StateData } from './types.js';

/** journalOf returns the path of the journal that follows a snapshot at rev. */
export function journalOf(dir: string, rev: number): string {
  return path.join(dir, journalName(rev));
}

/** hasJournal says whether a state directory holds a non-empty journal (the snapshot alone is not the state). */
export function hasJournal(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => JOURNAL_RE.test(n) && statSync(path.join(dir, n)).size > 0);
  } catch {
    return false;
  }
}

/** applyJournalSync applies a snapshot's journal to a parsed snapshot document (in place) and returns it. */
export function applyJournalSync(dir: string, doc: StateData): StateData {
  if (doc.version !== 2 || typeof doc.rev !== 'number') return doc;
  let buf: Buffer;
  try {
    buf = readFileSync(journalOf(dir, doc.rev));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return doc;
    throw err;
  }
  const parsed = parseJournal(buf);
  if (parsed.bad) throw new StateError(`state journal ${journalOf(dir, doc.rev)} is corrupt: ${parsed.bad.why}`, { code: 'E_STATE_CORRUPT' });
  const tables = doc as unknown as Record<string, Record<string, unknown>>;
  for (const e of parsed.entries) {
    if (e.rev <= doc.rev) continue;
    for (const op of e.ops) {
      const t = (tables[op.table] ??= {});
      if (op.value === undefined || op.value === null) delete t[op.key];
      else t[op.key] = op.value;
    }
    doc.events.push(...e.events);
    doc.rev = e.rev;
  }
  return doc;
}

/**
 * readStateHeadSync reads a file state's id and newest revision from its snapshot file (`state.json`
 * in its directory) and journal, without opening a backend; undefined when there is no such file.
 */
export function readStateHeadSync(snapshotFile: string): { id: string; rev: number } | undefined {
  let text: string;
  try {
    text = readFileSync(snapshotFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateError(`cannot read ${snapshotFile}: ${(err as Error).message}`, { code: 'E_STATE_DIR' });
  }
  let doc: StateData;
  try {
    doc = JSON.parse(text) as StateData;
  } catch (err) {
    throw new StateError(`${snapshotFile} is not JSON: ${(err as Error).message}`, { code: 'E_STATE_CORRUPT' });
  }
  applyJournalSync(path.dirname(snapshotFile), doc);
  return { id: doc.id ?? '', rev: doc.rev ?? 0 };
}
