/**
 * Streaming a task's output from log files on the host: all of each file, or its last N lines, then
 * (follow) new bytes as they are appended, polled, until cancelled. UTF-8 sequences split across
 * reads are kept whole.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';

const CHUNK = 64 * 1024;

/** LogFile is one output stream's file. */
export interface LogFile {
  stream: 'stdout' | 'stderr';
  file: string;
}

/** LogFileOptions selects what streamLogFiles sends. */
export interface LogFileOptions {
  /** tail starts each file at its last N lines (all of it when undefined). */
  tail?: number;
  /** follow keeps sending what is appended until the signal aborts or `present` turns false. */
  follow: boolean;
  /** pollMs is how often a followed file is checked for new bytes. */
  pollMs: number;
  /** present says whether the files can still grow (the task's folder exists); following ends when it turns false. */
  present: () => boolean;
}

/**
 * streamLogFiles sends each file's initial content in turn, then with follow what any of them gains;
 * a file that shrank (truncated) is read again from its start.
 */
export async function streamLogFiles(files: LogFile[], opts: LogFileOptions, onData: (stream: 'stdout' | 'stderr', data: string) => void, signal: AbortSignal): Promise<void> {
  const cursors = files.map((f) => ({ ...f, offset: 0, dec: new StringDecoder('utf8') }));
  for (const c of cursors) {
    c.offset = await sendInitial(c.file, opts.tail, (d) => onData(c.stream, d));
  }
  if (!opts.follow) return;
  while (!signal.aborted) {
    await sleep(opts.pollMs, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) break;
    if (!opts.present()) break;
    for (const c of cursors) {
      let size: number;
      try {
        size = fs.statSync(c.file).size;
      } catch {
        continue;
      }
      if (size < c.offset) c.offset = 0; // truncated
      while (size > c.offset && !signal.aborted) {
        const n = Math.min(size - c.offset, CHUNK);
        const buf = readRange(c.file, c.offset, n);
        if (buf.length === 0) break;
        c.offset += buf.length;
        const text = c.dec.write(buf);
        if (text) onData(c.stream, text);
      }
    }
  }
}

function readRange(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** sendInitial sends the file (or its last `tail` lines) in chunks and returns the offset reached. */
async function sendInitial(file: string, tail: number | undefined, emit: (d: string) => void): Promise<number> {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return 0;
  }
  let start = 0;
  if (tail !== undefined && tail >= 0) {
    start = tailOffset(file, size, tail);
  }
  const dec = new StringDecoder('utf8');
  let off = start;
  while (off < size) {
    const buf = readRange(file, off, Math.min(CHUNK, size - off));
    if (buf.length === 0) break;
    off += buf.length;
    const t = dec.write(buf);
    if (t) emit(t);
  }
  const rest = dec.end();
  if (rest) emit(rest);
  return off;
}

/** tailOffset finds where the last n lines of a file begin, reading backwards in chunks. */
export function tailOffset(file: string, size: number, n: number): number {
  if (n === 0) return size;
  let pos = size;
  let newlines = 0;
  // A trailing newline ends the last line; it does not start a new one.
  let skipLast = size > 0 && readRange(file, size - 1, 1)[0] === 0x0a;
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    const buf = readRange(file, pos - len, len);
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) continue;
      if (skipLast) {
        skipLast = false;
        continue;
      }
      newlines++;
      if (newlines === n) return pos - len + i + 1;
    }
    pos -= len;
  }
  return 0;
}
