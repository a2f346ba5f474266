import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parsePlainYaml } from '../../src/spec/plain-yaml.js';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e) ? [p] : [];
  });
}

describe('parsePlainYaml (the fast path of spec loading)', () => {
  it('reads every fixture and example either exactly as the yaml library does, or not at all', () => {
    let read = 0;
    for (const f of [...yamlFiles('fixtures'), ...yamlFiles('examples')]) {
      const text = readFileSync(f, 'utf8');
      const fast = parsePlainYaml(text);
      if (fast === undefined) continue;
      read += 1;
      expect(fast, f).toEqual(parse(text, { merge: true }));
    }
    expect(read).toBeGreaterThan(5);
  });

  it.each([
    ['anchors', 'a: &x 1\nb: *x\n'],
    ['duplicate keys', 'a: 1\na: 2\n'],
    ['block scalars', 'a: |\n  text\n'],
    ['escapes', 'a: "x\\ny"\n'],
    ['multi-line plain scalars', 'a: one\n  two\n'],
    ['tags', 'a: !!str 1\n'],
    ['several documents', 'a: 1\n---\nb: 2\n'],
    ['hex', 'a: 0x1f\n'],
    ['a top-level list', '- a\n- b\n'],
  ])('leaves %s to the full parser', (_, text) => {
    expect(parsePlainYaml(text)).toBeUndefined();
  });

  it('property: agrees with the yaml library on generated plain documents', () => {
    const scalar = fc.oneof(
      fc.integer({ min: -1e6, max: 1e6 }).map(String),
      fc.constantFrom('true', 'false', 'null', '~', '1.5', '2Gi', 'rack != r9', 'a-b_c', "it's", '10.0.0.1', 'x: y', '#no', '-c'),
      fc.stringMatching(/^[a-z][a-z0-9 .-]{0,8}$/),
    );
    const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,5}$/);
    const flowValue = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`), fc.dictionary(key, scalar, { maxKeys: 3 }).map((o) => `{${Object.entries(o).map(([k, v]) => `${k}: ${v}`).join(', ')}}`));
    const doc = fc.dictionary(key, fc.oneof(flowValue, fc.array(fc.dictionary(key, flowValue, { minKeys: 1, maxKeys: 3 }), { maxLength: 3 })), { minKeys: 1, maxKeys: 4 }).map((o) =>
      Object.entries(o)
        .map(([k, v]) =>
          Array.isArray(v)
            ? `${k}:\n${v.map((m) => Object.entries(m).map(([mk, mv], i) => `${i === 0 ? '  - ' : '    '}${mk}: ${mv}`).join('\n')).join('\n')}`
            : `${k}: ${v}  # note`,
        )
        .join('\n'),
    );
    fc.assert(
      fc.property(doc, (text) => {
        const fast = parsePlainYaml(text);
        if (fast === undefined) return;
        let slow: unknown;
        try {
          slow = parse(text, { uniqueKeys: true });
        } catch {
          throw new Error(`fast path accepted text the yaml library rejects:\n${text}`);
        }
        expect(fast).toEqual(slow);
      }),
      { numRuns: 500 },
    );
  });
});
