import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodeLine, encode, LineSplitter, ProtocolError, readMessages } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION, type Request } from '../../src/protocol/messages.js';

describe('codec', () => {
  it('encodes one message as exactly one line', () => {
    const line = encode({ v: PROTOCOL_VERSION, id: 1, type: 'logs', task: 'a/b/0', stream: 'both', follow: false });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    const weird = encode({ v: 1, id: 2, type: 'log', stream: 'stdout', data: 'a\nb\r\n\u2028' });
    expect(weird.split('\n')).toHaveLength(2);
    const r = decodeLine(weird.trimEnd());
    expect(r.ok && (r.value as { data: string }).data).toBe('a\nb\r\n\u2028');
  });

  it('splits lines across partial chunks, including split UTF-8 characters', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), (e) => {
      throw e;
    });
    const text = Buffer.from('{"a":"é"}\n{"b":2}\n{"c"', 'utf8');
    for (let i = 0; i < text.length; i++) s.push(text.subarray(i, i + 1));
    s.push(':3}');
    expect(lines).toEqual(['{"a":"é"}', '{"b":2}']);
    s.end();
    expect(lines).toEqual(['{"a":"é"}', '{"b":2}', '{"c":3}']);
  });

  it('rejects oversized lines and recovers on the next one', () => {
    const lines: string[] = [];
    const errors: ProtocolError[] = [];
    const s = new LineSplitter((l) => lines.push(l), (e) => errors.push(e), 16);
    s.push('x'.repeat(10));
    s.push('y'.repeat(10));
    s.push('zz\n{"ok":1}\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/longer than 16 bytes/);
    expect(lines).toEqual(['{"ok":1}']);
    s.push(`${'q'.repeat(20)}\nshort\n`);
    expect(errors).toHaveLength(2);
    expect(lines).toEqual(['{"ok":1}', 'short']);
  });

  it('reports malformed JSON and version mismatch as protocol errors without throwing', async () => {
    const input = new PassThrough();
    const got: Request[] = [];
    const errs: Array<{ msg: string; id?: number }> = [];
    const ended = new Promise<void>((resolve) => {
      readMessages<Request>(input, {
        onMessage: (m) => got.push(m),
        onError: (e, id) => errs.push({ msg: e.message, id }),
        onEnd: resolve,
      });
    });
    input.write('not json\n');
    input.write('[1,2]\n');
    input.write('{"v":99,"id":7,"type":"inspect"}\n');
    input.write('{"v":1,"id":8}\n');
    input.write('{"v":1,"id":9,"type":"inspect"}\n');
    input.end();
    await ended;
    expect(got).toEqual([{ v: 1, id: 9, type: 'inspect' }]);
    expect(errs.map((e) => e.msg)).toEqual([
      expect.stringMatching(/invalid JSON/),
      expect.stringMatching(/not a JSON object/),
      expect.stringMatching(/version mismatch: got v=99/),
      expect.stringMatching(/missing "type"/),
    ]);
    expect(errs[2]!.id).toBe(7);
    expect(decodeLine('{"v":1,"type":"x"}').ok).toBe(true);
  });
});
