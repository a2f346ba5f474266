/**
 * One rule, two forms: every feasibility checker and scorer is defined once with a reference form (on
 * AgentSlot objects, used for explanations) and a fast form (static checkers: once per equivalence
 * class; dynamic checkers and scorers: packed on the ledger's typed arrays). On random agents carrying
 * random reservations, the two forms must give the same answers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupCandidates, StaticClasses } from '../../src/scheduler/candidates.js';
import { FEASIBILITY_CHAIN, firstRejection } from '../../src/scheduler/feasibility.js';
import type { CheckContext } from '../../src/scheduler/feasibility.js';
import { ClusterLedger, groupDemandOf, groupKey } from '../../src/scheduler/ledger.js';
import { scoreBinpack, scoreSpread } from '../../src/scheduler/score.js';
import type { AgentSnapshot, Constraint, DesiredGroup, ProjectPolicy, TaskResources } from '../../src/scheduler/types.js';
import { DRIVERS, agentsArb, resourcesArb } from './arbitraries.js';

const constraintArb: fc.Arbitrary<Constraint> = fc
  .record({ op: fc.constantFrom('==', '!=', '<', '>=', 'in', '~' as const), value: fc.constantFrom('r1', 'r9', '5', '^r') })
  .map(({ op, value }) => ({ attribute: 'rack', op, value: op === 'in' ? ['r1', '10'] : value, source: `rack ${op} ${value}` }));

const groupArb: fc.Arbitrary<DesiredGroup> = fc
  .record({
    driver: fc.constantFrom(...DRIVERS),
    project: fc.constantFrom('acme', 'pinned'),
    maxPerAgent: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    resources: resourcesArb,
    constraints: fc.array(constraintArb, { maxLength: 2 }),
    strategy: fc.constantFrom('binpack', 'spread' as const),
    placement: fc.option(fc.oneof(fc.record({ idcs: fc.subarray(['bj1', 'sh2']) }), fc.record({ cluster: fc.constantFrom('c1', 'c2') })), { nil: undefined }),
  })
  .map(({ maxPerAgent, placement, ...g }) => ({
    ...g,
    plan: 'p',
    group: 'g',
    kind: 'process' as const,
    count: 1,
    everyAgent: false,
    specHash: 'h',
    ...(maxPerAgent === undefined ? {} : { maxPerAgent }),
    ...(placement === undefined ? {} : { placement }),
  }));

/** reservationsArb are tasks already charged to agents: of the group under test (maxPerAgent, spread) or of another. */
const reservationsArb = fc.array(
  fc.record({ agent: fc.integer({ min: 0, max: 11 }), same: fc.boolean(), resources: resourcesArb }),
  { maxLength: 20 },
);

const PROJECTS: Record<string, ProjectPolicy> = { acme: { weight: 1 }, pinned: { weight: 1, clusters: ['c1', 'c3'] } };

const caseArb = fc.record({
  agents: agentsArb({ clusters: ['c1', 'c2', 'c3'], minLength: 1, maxLength: 12 }),
  group: groupArb,
  reservations: reservationsArb,
});

/** setUp builds a ledger for the agents and charges the reservations to it. */
function setUp(agents: AgentSnapshot[], group: DesiredGroup, reservations: { agent: number; same: boolean; resources: TaskResources }[]): CheckContext {
  const ledger = new ClusterLedger(agents, ['ssd']);
  for (const r of reservations) {
    const agent = agents[r.agent % agents.length];
    if (agent) ledger.reserve(agent.name, r.same ? groupKey(group) : 'other/x', r.resources);
  }
  return { ledger, projects: PROJECTS };
}

describe('checkers: the fast form agrees with the reference form', () => {
  it('has a fast form for every checker of the chain (static ones per class, dynamic ones packed)', () => {
    for (const c of FEASIBILITY_CHAIN) expect(c.static || c.pack !== undefined, c.name).toBe(true);
  });

  it('static checkers: the per-class evaluation gives each agent its own rejection', () => {
    fc.assert(
      fc.property(caseArb, ({ agents, group, reservations }) => {
        const ctx = setUp(agents, group, reservations);
        const statics = FEASIBILITY_CHAIN.filter((c) => c.static);
        for (const checkers of [statics, ...statics.map((c) => [c])]) {
          const classes = new StaticClasses(ctx, checkers);
          const perClass = classes.rejections(group);
          ctx.ledger.slots.forEach((slot, i) => {
            expect(perClass[classes.classOf[i] ?? -1], `${checkers.map((c) => c.name).join(',')} on ${slot.agent.name}`).toEqual(firstRejection(checkers, ctx, slot, group));
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('dynamic checkers: ok() matches check() and room() counts exactly the tasks that still pass', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 5 }), ({ agents, group, reservations }, cap) => {
        const ctx = setUp(agents, group, reservations);
        for (const c of FEASIBILITY_CHAIN.filter((x) => !x.static)) {
          const packed = c.pack?.(ctx, group, groupDemandOf(ctx.ledger, group));
          ctx.ledger.slots.forEach((slot, i) => {
            const label = `${c.name} on ${slot.agent.name}`;
            const passes = c.check(ctx, slot, group) === undefined;
            if (!packed) {
              expect(passes, `${label}: no packed form, so the rule cannot reject`).toBe(true);
              return;
            }
            expect(packed.ok(i), label).toBe(passes);
            expect(packed.room(i, cap) >= 1, label).toBe(passes);
            expect(packed.room(i, cap), label).toBeLessThanOrEqual(cap);
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('dynamic checkers: two groups with the same packKey get the same ok() and room() (level 1 reuses counts by it)', () => {
    fc.assert(
      fc.property(caseArb, groupArb, fc.boolean(), fc.integer({ min: 1, max: 5 }), ({ agents, group, reservations }, other, alike, cap) => {
        const ctx = setUp(agents, group, reservations);
        // half of the time the other group asks the same (its plan/group key is the same), so every key can agree
        const { maxPerAgent: _drop, ...rest } = other;
        const second: DesiredGroup = alike ? { ...rest, resources: group.resources, ...(group.maxPerAgent === undefined ? {} : { maxPerAgent: group.maxPerAgent }) } : other;
        for (const c of FEASIBILITY_CHAIN.filter((x) => !x.static)) {
          expect(c.packKey, `${c.name} has a packKey`).toBeDefined();
          const [d1, d2] = [groupDemandOf(ctx.ledger, group), groupDemandOf(ctx.ledger, second)];
          if (c.packKey?.(group, d1) !== c.packKey?.(second, d2)) continue;
          const [p1, p2] = [c.pack?.(ctx, group, d1), c.pack?.(ctx, second, d2)];
          expect(p1 === undefined, c.name).toBe(p2 === undefined);
          ctx.ledger.slots.forEach((slot, i) => {
            expect(p1?.ok(i), `${c.name} on ${slot.agent.name}`).toBe(p2?.ok(i));
            expect(p1?.room(i, cap), `${c.name} on ${slot.agent.name}`).toBe(p2?.room(i, cap));
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('dynamic checkers: after room() more tasks are reserved on an agent, the rule rejects the next (unless capped)', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 5 }), ({ agents, group, reservations }, cap) => {
        for (const c of FEASIBILITY_CHAIN.filter((x) => !x.static)) {
          const ctx = setUp(agents, group, reservations);
          const packed = c.pack?.(ctx, group, groupDemandOf(ctx.ledger, group));
          if (!packed) continue;
          ctx.ledger.slots.forEach((slot, i) => {
            const n = Math.max(0, packed.room(i, cap));
            for (let k = 0; k < n; k++) {
              expect(c.check(ctx, slot, group), `${c.name} on ${slot.agent.name}, task ${k + 1} of ${n}`).toBeUndefined();
              ctx.ledger.reserve(slot.agent.name, groupKey(group), group.resources);
            }
            if (n < cap) expect(c.check(ctx, slot, group), `${c.name} on ${slot.agent.name} after ${n}`).toBeDefined();
            expect(packed.ok(i)).toBe(c.check(ctx, slot, group) === undefined);
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('candidate lists: feasible() is the dynamic part of the reference chain', () => {
    fc.assert(
      fc.property(caseArb, ({ agents, group, reservations }) => {
        const ctx = setUp(agents, group, reservations);
        const demand = groupDemandOf(ctx.ledger, group);
        const dynamic = FEASIBILITY_CHAIN.filter((c) => !c.static);
        const packs = dynamic.flatMap((c) => c.pack?.(ctx, group, demand) ?? []);
        const all = Int32Array.from(ctx.ledger.slots.map((_, i) => i));
        const list = new GroupCandidates(ctx.ledger, group.strategy, all, packs, scoreBinpack.pack(ctx.ledger, group, demand));
        ctx.ledger.slots.forEach((slot, i) => {
          expect(list.feasible(i), slot.agent.name).toBe(firstRejection(dynamic, ctx, slot, group) === undefined);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('scorers: the packed score is the reference score, to the bit', () => {
    fc.assert(
      fc.property(caseArb, ({ agents, group, reservations }) => {
        const ctx = setUp(agents, group, reservations);
        const demand = groupDemandOf(ctx.ledger, group);
        for (const scorer of [scoreBinpack, scoreSpread]) {
          const packed = scorer.pack(ctx.ledger, group, demand);
          ctx.ledger.slots.forEach((slot, i) => expect(packed(i), `${scorer.name} on ${slot.agent.name}`).toBe(scorer.score(slot, group)));
        }
      }),
      { numRuns: 300 },
    );
  });
});
