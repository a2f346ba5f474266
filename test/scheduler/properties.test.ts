import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RESOURCE_EPSILON, allocatableResources, matchConstraint, schedule } from '../../src/scheduler/index.js';
import type {
  ActualTask,
  Constraint,
  DesiredGroup,
  ResourceVector,
  SchedulePlan,
  SchedulerInput,
  TaskResources,
  TaskState,
} from '../../src/scheduler/index.js';
import { DRIVERS, agentsArb, resourcesArb } from './arbitraries.js';

const STATES: TaskState[] = ['pending', 'running', 'exited', 'failed', 'finished', 'stopped', 'lost', 'unknown'];

const constraintArb: fc.Arbitrary<Constraint> = fc
  .record({
    op: fc.constantFrom('==', '!=', '<', '<=', '>', '>=', 'in', 'not in', '~' as const),
    value: fc.constantFrom('r1', 'r9', '5', '^r'),
    list: fc.subarray(['r1', 'r2', '10']),
  })
  .map(({ op, value, list }) => ({
    attribute: 'rack',
    op,
    value: op === 'in' || op === 'not in' ? list : value,
    source: `rack ${op} ${value}`,
  }));

const groupsArb: fc.Arbitrary<DesiredGroup[]> = fc
  .uniqueArray(
    fc.record({
      plan: fc.constantFrom('p', 'q'),
      group: fc.constantFrom('g0', 'g1', 'g2'),
      driver: fc.constantFrom(...DRIVERS),
      count: fc.integer({ min: 0, max: 5 }),
      everyAgent: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))),
      maxPerAgent: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      resources: resourcesArb,
      constraints: fc.array(constraintArb, { maxLength: 2 }),
      specHash: fc.constantFrom('h1', 'h2'),
      strategy: fc.constantFrom('binpack', 'spread' as const),
      placement: fc.option(fc.oneof(fc.record({ idcs: fc.subarray(['bj1', 'sh2']) }), fc.record({ cluster: fc.constantFrom('c1', 'c2') })), { nil: undefined }),
    }),
    { maxLength: 4, selector: (g) => `${g.plan}/${g.group}` },
  )
  .map((gs) =>
    gs.map(({ maxPerAgent, placement, ...g }) => ({
      ...g,
      project: 'acme',
      kind: 'process' as const,
      ...(maxPerAgent === undefined ? {} : { maxPerAgent }),
      ...(placement === undefined ? {} : { placement }),
    })),
  );

const actualArb: fc.Arbitrary<ActualTask[]> = fc.array(
  fc
    .record({
      plan: fc.constantFrom('p', 'q', 'r'),
      group: fc.constantFrom('g0', 'g1', 'g2'),
      index: fc.integer({ min: 0, max: 6 }),
      agent: fc.constantFrom('a0', 'a1', 'a2', 'a3', 'gone'),
      driver: fc.constantFrom(...DRIVERS),
      specHash: fc.constantFrom('h1', 'h2'),
      state: fc.constantFrom(...STATES),
      resources: resourcesArb,
    })
    .map(({ index, ...t }) => ({ ...t, task: `${t.plan}/${t.group}/${index}`, project: 'acme' })),
  { maxLength: 10 },
);

const inputArb: fc.Arbitrary<SchedulerInput> = fc.record({
  agents: agentsArb({ clusters: ['c1', 'c2'], maxLength: 7 }),
  groups: groupsArb,
  actual: actualArb,
  plans: fc.subarray(['p', 'q']),
  seed: fc.integer(),
});

const DIMS = ['cpus', 'mem', 'disk', 'gpus'] as const;

function amount(v: ResourceVector, dim: string): number {
  return (DIMS as readonly string[]).includes(dim) ? v[dim as (typeof DIMS)[number]] : (v.scalars[dim] ?? 0);
}

/** untouched returns the actual tasks of plans the input does not apply. */
function untouched(input: SchedulerInput): ActualTask[] {
  const applied = new Set([...input.plans, ...input.groups.map((g) => g.plan)]);
  return input.actual.filter((t) => !applied.has(t.plan));
}

/** occupants lists, per agent, the resources of everything that runs there after the plan. */
function occupants(input: SchedulerInput, plan: SchedulePlan): Map<string, Array<{ task: string; group: string; resources: TaskResources }>> {
  const out = new Map<string, Array<{ task: string; group: string; resources: TaskResources }>>();
  const add = (agent: string, task: string, group: string, resources: TaskResources) => {
    const list = out.get(agent) ?? [];
    list.push({ task, group, resources });
    out.set(agent, list);
  };
  for (const t of [...untouched(input), ...plan.keep]) add(t.agent, t.task, `${t.plan}/${t.group}`, t.resources);
  for (const p of plan.create) add(p.agent, p.task, `${p.plan}/${p.group}`, p.resources);
  return out;
}

describe('schedule() properties', () => {
  it('never over-commits an agent it places on, in any dimension or port', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = schedule(input);
        const byAgent = occupants(input, plan);
        for (const agentName of new Set(plan.create.map((p) => p.agent))) {
          const agent = input.agents.find((a) => a.name === agentName)!;
          const alloc = allocatableResources(agent);
          const tasks = byAgent.get(agentName) ?? [];
          const created = plan.create.filter((c) => c.agent === agentName);
          const dims = new Set<string>([...DIMS, ...tasks.flatMap((t) => Object.keys(t.resources.scalars))]);
          for (const dim of dims) {
            // A dimension the new tasks do not ask for may already be over-committed by what runs there.
            if (!created.some((c) => amount(c.resources, dim) > 0)) continue;
            const used = tasks.reduce((s, t) => s + amount(t.resources, dim), 0);
            expect(used, `${agentName} ${dim}`).toBeLessThanOrEqual(amount(alloc, dim) + RESOURCE_EPSILON * (tasks.length + 1));
          }
          for (const p of created) {
            for (const port of p.resources.ports) {
              const binders = tasks.filter((t) => t.resources.ports.includes(port));
              expect(binders.map((t) => t.task), `port ${port} on ${agentName}`).toHaveLength(1);
            }
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('places only on ready agents that satisfy driver, placement, constraints and maxPerAgent', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = schedule(input);
        const byAgent = occupants(input, plan);
        for (const p of plan.create) {
          const agent = input.agents.find((a) => a.name === p.agent)!;
          const g = input.groups.find((x) => x.plan === p.plan && x.group === p.group)!;
          expect(agent.state).toBe('ready');
          expect(agent.drivers).toContain(g.driver);
          if (g.placement?.idcs?.length) expect(g.placement.idcs).toContain(agent.idc);
          if (g.placement?.cluster !== undefined) expect(agent.cluster).toBe(g.placement.cluster);
          for (const c of g.constraints) expect(matchConstraint(c, agent.attributes), c.source).toBe(true);
          if (g.maxPerAgent !== undefined) {
            const same = (byAgent.get(p.agent) ?? []).filter((t) => t.group === `${g.plan}/${g.group}`);
            expect(same.length).toBeLessThanOrEqual(g.maxPerAgent);
          }
          if (g.everyAgent) expect(plan.create.filter((c) => c.plan === p.plan && c.group === p.group && c.agent === p.agent)).toHaveLength(1);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('keeps or creates every task id at most once, and accounts for every desired index', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = schedule(input);
        const ids = [...plan.keep.map((t) => t.task), ...plan.create.map((p) => p.task)];
        expect(new Set(ids).size).toBe(ids.length);
        const seen = new Set([...ids, ...plan.unplaced.map((u) => u.task)]);
        for (const g of input.groups) {
          if (g.everyAgent) continue;
          for (let i = 0; i < g.count; i++) expect(seen.has(`${g.plan}/${g.group}/${i}`)).toBe(true);
        }
        // untouched plans are never stopped or kept
        const others = new Set(untouched(input));
        for (const s of plan.stop) expect(others.has(s.task)).toBe(false);
        for (const t of plan.keep) expect(others.has(t)).toBe(false);
        expect(plan.changes.create + plan.changes.update).toBe(plan.create.length);
        expect(plan.changes.update).toBe(plan.stop.filter((s) => s.reason === 'update').length);
      }),
      { numRuns: 400 },
    );
  });

  it('is deterministic for a seed and does not mutate its input', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const before = structuredClone(input);
        const a = schedule(input);
        expect(input).toEqual(before);
        const b = schedule(structuredClone(input));
        expect(b).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });
});
