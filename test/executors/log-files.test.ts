import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { streamLogFiles, tailOffset } from '../../src/executors/drivers/shared/log-files.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-log-files-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content);
  return f;
}

async function collect(files: Parameters<typeof streamLogFiles>[0], tail?: number): Promise<string[]> {
  const got: string[] = [];
  await streamLogFiles(files, { tail, follow: false, pollMs: 10, present: () => true }, (s, d) => got.push(`${s}:${d}`), new AbortController().signal);
  return got;
}

describe('log files', () => {
  it('tailOffset counts lines from the end; a trailing newline does not start a line', () => {
    const f = file('a.log', 'one\ntwo\nthree\n');
    const size = fs.statSync(f).size;
    expect(tailOffset(f, size, 0)).toBe(size);
    expect(tailOffset(f, size, 1)).toBe('one\ntwo\n'.length);
    expect(tailOffset(f, size, 2)).toBe('one\n'.length);
    expect(tailOffset(f, size, 9)).toBe(0);
    const g = file('b.log', 'one\ntwo');
    expect(tailOffset(g, fs.statSync(g).size, 1)).toBe('one\n'.length);
  });

  it('sends each file in turn, the last N lines of each with tail, and a missing file as nothing', async () => {
    const out = file('out.log', 'a\nb\nc\n');
    const err = file('err.log', 'x\ny\n');
    expect(await collect([{ stream: 'stdout', file: out }, { stream: 'stderr', file: err }], 1)).toEqual(['stdout:c\n', 'stderr:y\n']);
    expect(await collect([{ stream: 'stdout', file: path.join(dir, 'none.log') }])).toEqual([]);
  });

  it('keeps a UTF-8 character whole across the 64 KiB read boundary', async () => {
    const text = `${'a'.repeat(64 * 1024 - 1)}é${'b'.repeat(10)}`;
    const got = await collect([{ stream: 'stdout', file: file('u.log', text) }]);
    expect(got.map((g) => g.slice('stdout:'.length)).join('')).toBe(text);
  });

  it('follows appended and truncated files until present() turns false', async () => {
    const f = file('f.log', 'old\n');
    const got: string[] = [];
    let present = true;
    const done = streamLogFiles([{ stream: 'stdout', file: f }], { tail: 0, follow: true, pollMs: 10, present: () => present }, (_s, d) => got.push(d), new AbortController().signal);
    const seen = async (text: string) => {
      for (let i = 0; i < 500 && got.join('') !== text; i++) await new Promise((r) => setTimeout(r, 10));
    };
    fs.appendFileSync(f, 'new\n');
    await seen('new\n');
    fs.writeFileSync(f, 'x\n');
    await seen('new\nx\n');
    present = false;
    await done;
    expect(got.join('')).toBe('new\nx\n');
  });
});
