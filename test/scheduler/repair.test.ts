import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generatePackable, placedShare } from '../../bench/packable.js';
import { FEASIBILITY_CHAIN, firstRejection } from '../../src/scheduler/feasibility.js';
import { ClusterLedger, RESOURCE_EPSILON, isLive, schedule } from '../../src/scheduler/index.js';
import type { ActualTask, AgentSnapshot, DesiredGroup, ProjectPolicy, SchedulePlan, SchedulerInput, TaskResources } from '../../src/scheduler/index.js';
import { GiB, mockConstraint, mockGroup, mockResources } from './mocks.js';

// Inputs where the greedy pass leaves tasks unplaced although the capacity is there: agents of a few
// sizes, cpu-heavy and mem-heavy groups asking about all of it, with the rules the repair must keep
// (constraints, ports, maxPerAgent, quota, project pinning, drivers, agents not ready, running tasks).

const SHAPES: Array<[number, number]> = [[4, 2], [2, 1], [1, 6], [2, 12], [1, 2], [3, 3], [1, 8]];
const PROJECTS = ['acme', 'beta'];

const agentArb = fc.record({
  size: fc.constantFrom<[number, number]>([8, 16], [6, 24], [4, 20]),
  cluster: fc.constantFrom('c1', 'c1', 'c1', 'c1', 'c1', 'c1', 'c1', 'c2'),
  state: fc.constantFrom('ready', 'ready', 'ready', 'ready', 'draining', 'lost'),
  rack: fc.constantFrom('r1', 'r2', 'r3'),
  docker: fc.boolean(),
});

const groupArb = fc.record({
  shape: fc.constantFrom(...SHAPES),
  plan: fc.constantFrom('p', 'q'),
  weight: fc.integer({ min: 1, max: 5 }),
  project: fc.constantFrom(...PROJECTS),
  driver: fc.constantFrom('process', 'process', 'process', 'docker'),
  // Each rule on about one group in four, so that most batches have something to repair.
  constraint: fc.constantFrom(undefined, undefined, undefined, 'r1', 'r3'),
  maxPerAgent: fc.constantFrom(undefined, undefined, undefined, 1, 3),
  port: fc.constantFrom(undefined, undefined, undefined, undefined, 80, 443),
});

const inputArb: fc.Arbitrary<SchedulerInput> = fc
  .record({
    agents: fc.array(agentArb, { minLength: 2, maxLength: 8 }),
    groups: fc.array(groupArb, { minLength: 2, maxLength: 7 }),
    running: fc.array(fc.record({ group: fc.nat(), index: fc.nat({ max: 8 }), agent: fc.nat(), state: fc.constantFrom('running', 'running', 'failed'), stale: fc.boolean() }), { maxLength: 6 }),
    quota: fc.constantFrom(undefined, undefined, 6, 30),
    pin: fc.constantFrom(false, false, false, true),
    plans: fc.constantFrom(['p', 'q'], ['p'], ['q']),
    fill: fc.integer({ min: 70, max: 100 }),
    seed: fc.integer(),
  })
  .map(({ agents, groups, running, quota, pin, plans, fill, seed }) => {
    const snapshots: AgentSnapshot[] = agents.map((a, i) => ({
      name: `a${i}`,
      idc: 'bj1',
      cluster: a.cluster,
      state: a.state,
      capacity: { cpus: a.size[0], mem: a.size[1] * GiB, disk: 0, gpus: 0, scalars: {} },
      attributes: { rack: a.rack },
      drivers: a.docker ? ['process', 'docker'] : ['process'],
    }));
    // Counts ask for `fill`% of the ready agents' cpus, split by weight.
    const readyCpus = agents.filter((a) => a.state === 'ready').reduce((n, a) => n + a.size[0], 0);
    const unit = ((fill / 100) * readyCpus) / groups.reduce((n, g) => n + g.weight * g.shape[0], 0);
    const desired: DesiredGroup[] = groups.map((g, i) =>
      mockGroup({
        plan: g.plan,
        group: `g${i}`,
        project: g.project,
        driver: g.driver as DesiredGroup['driver'],
        count: Math.max(1, Math.round(g.weight * unit)),
        resources: mockResources({ cpus: g.shape[0], mem: g.shape[1] * GiB, ports: g.port === undefined ? [] : [g.port] }),
        constraints: g.constraint === undefined ? [] : [mockConstraint('rack', '!=', g.constraint)],
        ...(g.maxPerAgent === undefined ? {} : { maxPerAgent: g.maxPerAgent }),
      }),
    );
    const actual: ActualTask[] = running.flatMap((r) => {
      const g = desired[r.group % desired.length];
      const a = snapshots[r.agent % snapshots.length];
      if (!g || !a) return [];
      return [{ task: `${g.plan}/${g.group}/${r.index}`, plan: g.plan, group: g.group, project: g.project, agent: a.name, driver: g.driver, specHash: r.stale ? 'old' : g.specHash, state: r.state, resources: g.resources }];
    });
    const projects: Record<string, ProjectPolicy> = {
      acme: { weight: 2, ...(quota === undefined ? {} : { quota: { cpus: quota } }) },
      beta: { weight: 1, ...(pin ? { clusters: ['c2'] } : {}) },
    };
    return { agents: snapshots, groups: desired, actual, plans: [...plans], seed, projects };
  });

function applied(input: SchedulerInput): Set<string> {
  return new Set([...input.plans, ...input.groups.map((g) => g.plan)]);
}

/** occupants is everything that holds resources after the plan: other plans' tasks, kept tasks, creates. */
function occupants(input: SchedulerInput, plan: SchedulePlan): Array<{ id: string; agent: string; key: string; project: string; resources: TaskResources }> {
  const plans = applied(input);
  const others = input.actual.filter((t) => !plans.has(t.plan));
  return [
    ...[...others, ...plan.keep].map((t) => ({ id: `keep:${t.task}@${t.agent}`, agent: t.agent, key: `${t.plan}/${t.group}`, project: t.project, resources: t.resources })),
    ...plan.create.map((p) => ({ id: `create:${p.task}`, agent: p.agent, key: `${p.plan}/${p.group}`, project: p.project, resources: p.resources })),
  ];
}

/** expectEveryPlacementFeasible runs the reference chain for each create against everything else the plan leaves in place. */
function expectEveryPlacementFeasible(input: SchedulerInput, plan: SchedulePlan): void {
  const all = occupants(input, plan);
  for (const p of plan.create) {
    const ledger = new ClusterLedger(input.agents);
    for (const o of all) if (o.id !== `create:${p.task}`) ledger.reserve(o.agent, o.key, o.resources);
    const slot = ledger.slot(p.agent);
    const g = input.groups.find((x) => x.plan === p.plan && x.group === p.group);
    expect(slot, p.agent).toBeDefined();
    expect(g).toBeDefined();
    if (!slot || !g) continue;
    // The chain includes project pinning.
    expect(firstRejection(FEASIBILITY_CHAIN, { ledger, projects: input.projects ?? {} }, slot, g), `${p.task} on ${p.agent}`).toBeUndefined();
  }
  // Quota: what a project holds at the end stays within its quota in every dimension its new tasks ask for.
  for (const [name, policy] of Object.entries(input.projects ?? {})) {
    const cap = policy.quota?.cpus;
    if (cap === undefined || !plan.create.some((p) => p.project === name)) continue;
    const held = all.filter((o) => o.project === name && input.agents.some((a) => a.name === o.agent)).reduce((s, o) => s + o.resources.cpus, 0);
    expect(held, `project ${name}`).toBeLessThanOrEqual(cap + RESOURCE_EPSILON);
  }
  // A group's new tasks stay in one cluster (level 1).
  const clusters = new Map<string, Set<string>>();
  for (const p of plan.create.filter((c) => c.reason === 'new')) {
    const key = `${p.plan}/${p.group}`;
    clusters.set(key, (clusters.get(key) ?? new Set()).add(p.cluster));
  }
  for (const [key, set] of clusters) expect([...set], key).toHaveLength(1);
}

/** expectNothingRunningMoves: a live task of an applied plan with the group's spec, on a usable agent, is kept where it is. */
function expectNothingRunningMoves(input: SchedulerInput, plan: SchedulePlan): void {
  const plans = applied(input);
  const kept = new Set(plan.keep);
  const stopped = new Set(plan.stop.map((s) => s.task));
  const seen = new Set<string>();
  for (const t of input.actual) {
    if (!plans.has(t.plan) || !isLive(t.state) || seen.has(t.task)) continue;
    const g = input.groups.find((x) => x.plan === t.plan && x.group === t.group);
    const state = input.agents.find((a) => a.name === t.agent)?.state;
    if (!g || t.specHash !== g.specHash || (state !== 'ready' && state !== 'draining')) continue;
    if (Number(t.task.split('/')[2]) >= g.count) continue;
    if (input.actual.some((o) => o !== t && o.task === t.task)) continue; // duplicates: the reconciler picks one
    seen.add(t.task);
    expect(kept.has(t), t.task).toBe(true);
    expect(stopped.has(t), t.task).toBe(false);
    expect(plan.create.some((p) => p.task === t.task), t.task).toBe(false);
  }
  const others = input.actual.filter((t) => !plans.has(t.plan));
  for (const t of others) expect(stopped.has(t)).toBe(false);
}

describe('repair after a batch (repair.ts)', () => {
  it('places ≥ 99% of a small perfectly packable instance (the greedy pass alone placed 72–80%)', () => {
    for (const seed of [1, 2, 3]) {
      const instance = generatePackable({ agents: 40, plans: 2, seed });
      const plan = schedule(instance.input);
      const share = placedShare(instance, plan);
      expect(Math.min(share.cpus, share.mem), `seed ${seed}`).toBeGreaterThanOrEqual(0.99);
      expectEveryPlacementFeasible(instance.input, plan);
    }
  });

  it('still repacks when one task too many makes capacity short (DRF decides who is admitted)', () => {
    const instance = generatePackable({ agents: 40, plans: 2, seed: 1 });
    const g = instance.input.groups[0];
    expect(g).toBeDefined();
    if (!g) return;
    const input: SchedulerInput = { ...instance.input, groups: [...instance.input.groups, { ...g, group: 'one-more', count: 1 }] };
    const plan = schedule(input);
    const share = placedShare(instance, plan);
    // Before the admission in DRF order the repack was skipped whenever capacity was short: 76.6% placed
    // on 300 agents (seed 1) with one task too many, 99.9% now; 98.4% on these 40.
    expect(Math.min(share.cpus, share.mem)).toBeGreaterThanOrEqual(0.97);
    expect(plan.unplaced.length).toBeGreaterThanOrEqual(1);
    expectEveryPlacementFeasible(input, plan);
  });

  it('keeps tasks that run where they are while it repacks the new ones around them', () => {
    const instance = generatePackable({ agents: 30, plans: 2, seed: 5 });
    const first = schedule(instance.input);
    // Half of the groups' placements become running tasks; the rest of each group is new.
    const running: ActualTask[] = first.create
      .filter((_, i) => i % 2 === 0)
      .map((p) => ({ task: p.task, plan: p.plan, group: p.group, project: p.project, agent: p.agent, driver: p.driver, specHash: p.specHash, state: 'running', resources: p.resources }));
    const input: SchedulerInput = { ...instance.input, actual: running, seed: 9 };
    const plan = schedule(input);
    expectNothingRunningMoves(input, plan);
    expect(plan.keep).toHaveLength(running.length);
    expect(plan.stop).toEqual([]);
    expectEveryPlacementFeasible(input, plan);
    const share = placedShare(instance, { ...plan, create: [...plan.create, ...running.map((t) => ({ ...t, idc: 'bj1', cluster: 'bj1-a', reason: 'new' as const }))] });
    expect(Math.min(share.cpus, share.mem)).toBeGreaterThanOrEqual(0.97);
  });

  it('every placement passes the reference chain (pinning included) and quota; nothing running moves (property)', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = schedule(input);
        expectEveryPlacementFeasible(input, plan);
        expectNothingRunningMoves(input, plan);
        const ids = [...plan.keep.map((t) => t.task), ...plan.create.map((p) => p.task)];
        expect(new Set(ids).size).toBe(ids.length);
        const accounted = new Set([...ids, ...plan.unplaced.map((u) => u.task)]);
        for (const g of input.groups) for (let i = 0; i < g.count; i++) expect(accounted.has(`${g.plan}/${g.group}/${i}`)).toBe(true);
        for (const u of plan.unplaced) expect(plan.create.some((p) => p.task === u.task), u.task).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic for a seed (property)', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const before = structuredClone(input);
        const a = schedule(input);
        expect(input).toEqual(before);
        expect(schedule(structuredClone(input))).toEqual(a);
      }),
      { numRuns: 150 },
    );
  });
});
