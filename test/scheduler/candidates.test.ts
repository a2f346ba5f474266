import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StaticClasses } from '../../src/scheduler/candidates.js';
import { FEASIBILITY_CHAIN } from '../../src/scheduler/feasibility.js';
import { ClusterLedger } from '../../src/scheduler/ledger.js';
import { parseConstraint } from '../../src/spec/constraints.js';
import { mockAgent, mockGroup } from './mocks.js';

describe('StaticClasses.candidatesByCluster', () => {
  it('property: equals a scan of the slots in order, keeping those whose class passes, per cluster', () => {
    const agent = fc.record({
      cluster: fc.constantFrom('bj1-a', 'bj1-b', 'sh1-a'),
      rack: fc.constantFrom('r0', 'r1', 'r2', 'r3'),
      ssd: fc.constantFrom('yes', 'no'),
      ready: fc.boolean(),
    });
    const constraint = fc.constantFrom('rack != r1', 'rack == r2', 'ssd == yes', 'rack in (r0, r3)', 'ssd != no');
    fc.assert(
      fc.property(fc.array(agent, { minLength: 1, maxLength: 40 }), fc.array(fc.array(constraint, { maxLength: 2 }), { minLength: 1, maxLength: 5 }), (specs, groups) => {
        // names shuffle the clusters in slot order (the ledger sorts agents by name)
        const agents = specs.map((a, i) =>
          mockAgent({ name: `h${(i * 7919) % 101}-${i}`, cluster: a.cluster, idc: a.cluster.slice(0, 3), state: a.ready ? 'ready' : 'lost', attributes: { rack: a.rack, ssd: a.ssd } }),
        );
        const ledger = new ClusterLedger(agents);
        const classes = new StaticClasses({ ledger, projects: {} }, FEASIBILITY_CHAIN.filter((c) => c.static));
        for (const cs of groups) {
          const g = mockGroup({ constraints: cs.map(parseConstraint) });
          const rejections = classes.rejections(g);
          const scan = new Map<string, number[]>();
          ledger.slots.forEach((s, i) => {
            if (rejections[classes.classOf[i] ?? 0] !== undefined) return;
            const list = scan.get(s.agent.cluster);
            if (list) list.push(i);
            else scan.set(s.agent.cluster, [i]);
          });
          expect([...classes.candidatesByCluster(g).entries()]).toEqual([...scan.entries()]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
