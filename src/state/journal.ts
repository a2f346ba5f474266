/**
 * The journal of the file backend: one line per committed transaction, `<json>\t<sha256 16 hex>\n`,
 * appended and fsync'd before the commit is acknowledged. A last line without its newline is a
 * write that never completed (torn by a crash): it was never acknowledged and is dropped. Any other
 * bad line is corruption.
 */
import { createHash } from 'node:crypto';
import type { JournalEntry } from './tables.js';

/** journalName is the journal file that follows a snapshot at revision rev. */
export function journalName(rev: number): string {
  return `journal-${String(rev).padStart(12, '0')}.ndjson`;
}

/** JOURNAL_RE matches journal file names. */
export const JOURNAL_RE = /^journal-(\d{12})\.ndjson$/;

/** checksum is the first 16 hex digits of the SHA-256 of a line's JSON. */
export function checksum(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

/** encodeEntry renders one journal line. */
export function encodeEntry(e: JournalEntry): string {
  const json = JSON.stringify(e);
  return `${json}\t${checksum(json)}\n`;
}

/** ParsedJournal is what parseJournal found in a chunk of journal bytes. */
export interface ParsedJournal {
  entries: JournalEntry[];
  /** consumed is the number of bytes of complete lines. */
  consumed: number;
  /** torn is set when the chunk ends with an incomplete line. */
  torn: boolean;
  /** bad describes the first corrupt complete line (line number from the chunk's start), if any. */
  bad?: { line: number; why: string };
}

/** parseJournal decodes complete lines from buf (starting at a line boundary). */
export function parseJournal(buf: Buffer): ParsedJournal {
  const entries: JournalEntry[] = [];
  let pos = 0;
  let line = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return { entries, consumed: pos, torn: true };
    line += 1;
    const text = buf.toString('utf8', pos, nl);
    const tab = text.lastIndexOf('\t');
    const json = tab >= 0 ? text.slice(0, tab) : '';
    if (tab < 0 || checksum(json) !== text.slice(tab + 1)) return { entries, consumed: pos, torn: false, bad: { line, why: 'checksum mismatch' } };
    let entry: JournalEntry;
    try {
      entry = JSON.parse(json) as JournalEntry;
    } catch (err) {
      return { entries, consumed: pos, torn: false, bad: { line, why: `not JSON (${(err as Error).message})` } };
    }
    if (typeof entry.rev !== 'number' || !Array.isArray(entry.ops) || !Array.isArray(entry.events)) {
      return { entries, consumed: pos, torn: false, bad: { line, why: 'not a journal entry' } };
    }
    entries.push(entry);
    pos = nl + 1;
  }
  return { entries, consumed: pos, torn: false };
}
