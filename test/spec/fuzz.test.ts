import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { loadInventoryText, loadPlanText } from '../../src/spec/index.js';

function onlySpecErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    for (const i of (e as SpecError).issues) {
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.col).toBeGreaterThanOrEqual(1);
      expect(i.message).not.toMatch(/\n\s+at /);
    }
  }
}

const keys = ['name', 'project', 'processes', 'containers', 'vms', 'jobs', 'command', 'count', 'resources', 'mem', 'cpus', '__proto__', 'constructor'];
const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('2Gi', 'x', '1e9', '-1'));
const yamlish = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, scalar, tie('list'), tie('map')),
  list: fc.array(tie('value'), { maxLength: 4 }),
  map: fc.dictionary(fc.constantFrom(...keys), tie('value'), { maxKeys: 5 }),
})).map;

describe('robustness', () => {
  it('arbitrary text only ever throws SpecError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        onlySpecErrors(() => loadPlanText(text, 'f.yaml'));
        onlySpecErrors(() => loadInventoryText(text, 'f.yaml'));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary documents only ever throw SpecError', () => {
    fc.assert(
      fc.property(yamlish, (doc) => {
        const text = JSON.stringify(doc); // JSON is YAML
        onlySpecErrors(() => loadPlanText(text, 'f.yaml'));
        onlySpecErrors(() => loadInventoryText(text, 'f.yaml'));
      }),
      { numRuns: 300 },
    );
  });
});
