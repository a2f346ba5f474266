/** The executor protocol is one map (Calls): every call has a handler, and nothing else is one. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Executor } from '../../src/executors/executor.js';
import { CALL_NAMES, type Request } from '../../src/protocol/messages.js';

function executor(): { ex: Executor; out: () => Record<string, unknown>[] } {
  const output = new PassThrough();
  let text = '';
  output.on('data', (d: Buffer) => (text += d.toString()));
  const ex = new Executor({ input: new PassThrough(), output, log: () => undefined, exit: () => undefined });
  return { ex, out: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('protocol map', () => {
  it('every call of the map has a handler, and every handler is a call of the map', () => {
    expect([...executor().ex.calls].sort()).toEqual([...CALL_NAMES].sort());
    expect(CALL_NAMES).toContain('hello');
    expect(CALL_NAMES).toContain('image-load');
  });

  it('a request type that is not a call (an inherited property name included) is a protocol error, not a crash', async () => {
    const { ex, out } = executor();
    for (const [id, type] of [[1, 'constructor'], [2, '__proto__'], [3, 'toString'], [4, 'nope']] as const) {
      await ex.handle({ v: 1, id, type } as unknown as Request);
    }
    const answers = out();
    expect(answers).toHaveLength(4);
    for (const a of answers) expect(a).toMatchObject({ type: 'result', ok: false, error: { code: 'E_PROTOCOL' } });
  });

  it('a call before hello is refused by its handler', async () => {
    const { ex, out } = executor();
    await ex.handle({ v: 1, id: 9, type: 'inspect' });
    expect(out()[0]).toMatchObject({ id: 9, ok: false });
  });
});
