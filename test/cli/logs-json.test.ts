import { expect, it } from 'vitest';
import { jsonLines } from '../../src/cli/log-output.js';

it('logs --json prints a line split across chunks once, per stream, and the rest at the end', () => {
  const out: string[] = [];
  const j = jsonLines('a/b/0', (s) => void out.push(s));
  j.push('stdout', 'hel');
  j.push('stderr', 'oops\n');
  j.push('stdout', 'lo\nwor');
  j.end();
  expect(out.map((l) => JSON.parse(l))).toEqual([
    { task: 'a/b/0', stream: 'stderr', line: 'oops' },
    { task: 'a/b/0', stream: 'stdout', line: 'hello' },
    { task: 'a/b/0', stream: 'stdout', line: 'wor' },
  ]);
});
