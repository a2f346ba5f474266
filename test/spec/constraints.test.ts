import { describe, expect, it } from 'vitest';
import { matchConstraint, parseConstraint } from '../../src/spec/index.js';

describe('parseConstraint', () => {
  it.each<[string, string, string, string | string[]]>([
    ['rack == r1', 'rack', '==', 'r1'],
    ['rack != r9', 'rack', '!=', 'r9'],
    ['gen < 3', 'gen', '<', '3'],
    ['gen <= 3', 'gen', '<=', '3'],
    ['gen > 3', 'gen', '>', '3'],
    ['gen >= 3', 'gen', '>=', '3'],
    ['gen>=3', 'gen', '>=', '3'],
    ['zone in (a, b)', 'zone', 'in', ['a', 'b']],
    ['zone in [a,b]', 'zone', 'in', ['a', 'b']],
    ['zone in ("a", \'b c\')', 'zone', 'in', ['a', 'b c']],
    ['zone not in (a)', 'zone', 'not in', ['a']],
    ['zone  not   in (a)', 'zone', 'not in', ['a']],
    ['host ~ ^web-[0-9]+$', 'host', '~', '^web-[0-9]+$'],
    ['cpu_model == "Xeon Gold 6248"', 'cpu_model', '==', 'Xeon Gold 6248'],
    ['cpu.model == x', 'cpu.model', '==', 'x'],
    ['  index == 1  ', 'index', '==', '1'],
  ])('%j', (src, attribute, op, value) => {
    const c = parseConstraint(src);
    expect(c).toEqual({ attribute, op, value, source: src.trim() });
  });

  it.each<[string, RegExp]>([
    ['', /empty constraint/],
    ['rack', /missing operator and value/],
    ['rack = r9', /unknown operator '='/],
    ['rack === r9', /unknown operator '==='/],
    ['rack ==', /missing value after '=='/],
    ['== r9', /expected an attribute name first/],
    ['zone in a, b', /expected a list after 'in'/],
    ['zone in ()', /the list is empty/],
    ['zone in (a,,b)', /empty item/],
    ['host ~ (', /regex does not compile/],
    [`host ~ ${'a'.repeat(300)}`, /regex is 300 characters \(limit 256\)/],
    ['zone inside x', /unknown operator 'inside'/],
  ])('%j is rejected', (src, re) => {
    expect(() => parseConstraint(src)).toThrow(re);
  });
});

describe('matchConstraint', () => {
  const attrs = { rack: 'r1', gen: '10', zone: 'a', host: 'web-12', model: 'Xeon' };
  it.each<[string, boolean]>([
    ['rack == r1', true],
    ['rack == r2', false],
    ['rack != r9', true],
    ['rack != r1', false],
    ['gen > 9', true], // numeric: 10 > 9 (lexically '10' < '9')
    ['gen < 9', false],
    ['gen >= 10', true],
    ['gen <= 10.0', true],
    ['gen == 10', true],
    ['gen == 10.0', false], // == and != compare strings exactly (as Nomad's =); use <= and >= for numeric equality
    ['model < Z', true], // lexical
    ['model > Z', false],
    ['zone in (a, b)', true],
    ['zone in (b, c)', false],
    ['zone not in (b, c)', true],
    ['zone not in (a)', false],
    ['host ~ ^web-[0-9]+$', true],
    ['host ~ db', false],
    ['host ~ eb-1', true], // unanchored
    // missing attribute: only != and not in match
    ['missing == x', false],
    ['missing != x', true],
    ['missing < 5', false],
    ['missing in (x)', false],
    ['missing not in (x)', true],
    ['missing ~ .*', false],
  ])('%j → %s', (src, want) => {
    expect(matchConstraint(parseConstraint(src), attrs)).toBe(want);
  });

  it('does not see inherited properties', () => {
    expect(matchConstraint(parseConstraint('constructor != x'), {})).toBe(true);
    expect(matchConstraint(parseConstraint('toString == x'), {})).toBe(false);
  });
});
