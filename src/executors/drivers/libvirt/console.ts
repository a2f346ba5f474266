/**
 * A VM's output: its serial console, written by virtlogd to `vms/<key>/console.log`, which `logs`
 * streams as stdout (a VM has no stderr).
 */
import fs from 'node:fs';
import type { LogOptions } from '../driver.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** streamConsole sends the console log file to onData as stdout (the last opts.tail lines first); with follow it polls every 250 ms until the signal aborts. */
export async function streamConsole(file: string, opts: LogOptions, onData: (stream: 'stdout' | 'stderr', data: string) => void, signal: AbortSignal): Promise<void> {
  let pos = 0;
  const readFrom = (): string => {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return '';
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < pos) pos = 0;
      if (size === pos) return '';
      const buf = Buffer.alloc(Math.min(size - pos, 1024 * 1024));
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      pos += n;
      return buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  };
  let first = '';
  for (let chunk = readFrom(); chunk; chunk = readFrom()) first += chunk;
  if (opts.tail !== undefined) {
    const lines = first.split('\n');
    const endsWithNl = first.endsWith('\n');
    const body = endsWithNl ? lines.slice(0, -1) : lines;
    first = body.slice(Math.max(0, body.length - opts.tail)).join('\n') + (endsWithNl && body.length ? '\n' : '');
  }
  if (first) onData('stdout', first);
  while (opts.follow && !signal.aborted) {
    await sleep(250);
    const more = readFrom();
    if (more) onData('stdout', more);
  }
}
