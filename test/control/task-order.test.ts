import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareTaskIds, sortByTaskId } from '../../src/control/task-order.js';

describe('sortByTaskId', () => {
  it('property: the same order as sorting with compareTaskIds (then the tie-break, then the order given)', () => {
    const id = fc.oneof(
      fc.tuple(fc.constantFrom('web', 'db', 'fleet-1'), fc.constantFrom('api', 'g0', 'g10'), fc.nat({ max: 30 })).map(([p, g, i]) => `${p}/${g}/${i}`),
      fc.constantFrom('web/api/?', 'web/api/x1', 'noslash', 'a/b', '/', 'web/api/1e3', 'web/api/-0', 'web/api/ 7'),
    );
    const item = fc.record({ task: id, agent: fc.constantFrom('h1', 'h2', 'h3'), n: fc.nat() });
    fc.assert(
      fc.property(fc.array(item, { maxLength: 60 }), (items) => {
        const byAgent = (a: { agent: string }, b: { agent: string }) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0);
        expect(sortByTaskId(items, (x) => x.task)).toEqual([...items].sort((a, b) => compareTaskIds(a.task, b.task)));
        expect(sortByTaskId(items, (x) => x.task, byAgent)).toEqual([...items].sort((a, b) => compareTaskIds(a.task, b.task) || byAgent(a, b)));
      }),
      { numRuns: 500 },
    );
  });
});
