import { describe, expect, it } from 'vitest';
import { matchConstraint } from '../../src/scheduler/index.js';
import type { ConstraintOp } from '../../src/scheduler/index.js';
import { mockConstraint } from './mocks.js';

const attrs = { rack: 'r1', cores: '48', ver: '10', zone: 'a', model: 'Xeon-6248', name: 'b' };

describe('matchConstraint', () => {
  const cases: Array<[string, ConstraintOp, string | string[], boolean]> = [
    ['rack', '==', 'r1', true],
    ['rack', '==', 'r2', false],
    ['rack', '!=', 'r9', true],
    ['rack', '!=', 'r1', false],
    // numeric when both sides are finite numbers: 48 > 9 (lexically '48' < '9')
    ['cores', '>', '9', true],
    ['cores', '>=', '48', true],
    ['cores', '<', '48', false],
    ['cores', '<=', '48.0', true],
    ['ver', '<', '9', false],
    // lexical otherwise
    ['name', '<', 'c', true],
    ['name', '>', 'a', true],
    ['name', '>=', 'b', true],
    ['name', '<=', 'a', false],
    ['cores', '<', 'abc', true],
    ['zone', 'in', ['a', 'b'], true],
    ['zone', 'in', ['c'], false],
    ['zone', 'in', '(a, b)', true],
    ['zone', 'not in', ['a', 'b'], false],
    ['zone', 'not in', ['c'], true],
    ['model', '~', '^Xeon-6', true],
    ['model', '~', '^Epyc', false],
    ['model', '~', '([', false],
    // missing attribute matches only != and not in
    ['missing', '==', 'x', false],
    ['missing', '!=', 'x', true],
    ['missing', '<', '5', false],
    ['missing', '>=', '5', false],
    ['missing', 'in', ['x'], false],
    ['missing', 'not in', ['x'], true],
    ['missing', '~', '.*', false],
  ];
  it.each(cases)('%s %s %j → %s', (attribute, op, value, want) => {
    expect(matchConstraint(mockConstraint(attribute, op, value), attrs)).toBe(want);
  });

  it('does not read inherited properties as attributes', () => {
    expect(matchConstraint(mockConstraint('toString', '!=', 'x'), {})).toBe(true);
    expect(matchConstraint(mockConstraint('constructor', '~', '.'), {})).toBe(false);
  });
});
