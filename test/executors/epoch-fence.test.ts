import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Executor } from '../../src/executors/executor.js';
import { EpochFence } from '../../src/executors/epoch-fence.js';
import { tempDir } from './helpers.js';

let workDir: string;
beforeEach(() => (workDir = tempDir()));
afterEach(() => fs.rmSync(workDir, { recursive: true, force: true }));

const STATE = 'st-0123456789ab';

/** session runs one executor (a session) over in-memory streams and answers each call's result. */
function session() {
  const input = new PassThrough();
  const output = new PassThrough();
  const logs: string[] = [];
  const ex = new Executor({ input, output, log: (m) => logs.push(m), exit: () => undefined });
  ex.start();
  let buf = '';
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  output.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
      buf = buf.slice(i + 1);
      if (typeof m.id === 'number' && m.type !== 'log') waiting.get(m.id)?.(m);
    }
  });
  let id = 0;
  const call = (body: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const n = ++id;
      waiting.set(n, resolve);
      input.write(`${JSON.stringify({ v: 1, id: n, ...body })}\n`);
    });
  return { call, logs, close: () => ex.close(0) };
}

describe('executor fencing by leadership epoch', () => {
  it('a session of an older epoch is refused once a newer one said hello, on the same workDir; calls without an epoch pass', async () => {
    const old = session();
    const hello = await old.call({ type: 'hello', agent: 'a', workDir, state: STATE, epoch: 5 });
    expect(hello.type).toBe('register');
    expect((await old.call({ type: 'inspect', epoch: 5 })).ok).toBe(true);

    const next = session();
    expect((await next.call({ type: 'hello', agent: 'a', workDir, state: STATE, epoch: 9 })).type).toBe('register');

    const refused = await old.call({ type: 'inspect', epoch: 5 });
    expect(refused.ok).toBe(false);
    expect((refused.error as { code: string; message: string }).code).toBe('E_FENCED');
    expect((refused.error as { message: string }).message).toMatch(/epoch 5, but a control host of epoch 9 leads state st-0123456789ab/);
    const stop = await old.call({ type: 'stop', task: 'p/g/0', epoch: 5 });
    expect((stop.error as { code: string }).code).toBe('E_FENCED');
    expect(old.logs.filter((l) => /fencing: refused/.test(l))).toHaveLength(2);
    expect(old.logs.at(-1)).toMatch(/refused stop from epoch 5 .*epoch 9 leads now \(2 refused by this session\)/);
    const file = fs.readFileSync(path.join(workDir, 'fencing.log'), 'utf8').trim().split('\n');
    expect(file).toHaveLength(2);

    // the newer epoch goes on; a call without an epoch (a file state's host) is not checked
    expect((await next.call({ type: 'inspect', epoch: 9 })).ok).toBe(true);
    expect((await old.call({ type: 'inspect' })).ok).toBe(true);
    // a deposed host that opens a new session is refused at hello
    const again = session();
    const h = await again.call({ type: 'hello', agent: 'a', workDir, state: STATE, epoch: 7 });
    expect((h.error as { code: string }).code).toBe('E_FENCED');
    for (const s of [old, next, again]) s.close();
  });

  it('epochs are kept per state, and the newest never goes back whatever order sessions record them in', () => {
    const a = new EpochFence(workDir, STATE, () => undefined);
    const b = new EpochFence(workDir, STATE, () => undefined);
    const other = new EpochFence(workDir, 'st-ffffffffffff', () => undefined);
    b.admit(12, 'run');
    expect(() => a.admit(11, 'run')).toThrow(/epoch 12 leads/);
    other.admit(3, 'run'); // another state's epochs are its own
    a.admit(12, 'run');
    a.admit(20, 'run');
    expect(() => b.admit(12, 'stop')).toThrow(/epoch 20 leads/);
    expect(fs.readdirSync(path.join(workDir, 'epochs', STATE))).toEqual(['0000000000000020']);
    expect(b.refused).toBe(1);
  });
});
