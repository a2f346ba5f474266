import { describe, expect, it } from 'vitest';
import { schedule } from '../../src/scheduler/index.js';
import { GiB, mockAgent, mockGroup, mockInput, mockResources, mockTask } from './mocks.js';

const filler = mockGroup({ plan: 'other', group: 'filler' });
const agents = [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' }), mockAgent({ name: 'a3' })];
// a2 is the busiest, a3 the emptiest
const load = [
  mockTask(filler, 0, 'a1', { resources: mockResources({ cpus: 2, mem: 4 * GiB }) }),
  mockTask(filler, 1, 'a2', { resources: mockResources({ cpus: 6, mem: 12 * GiB }) }),
];

describe('scorers', () => {
  it('binpack puts a task on the fullest agent it fits', () => {
    const plan = schedule(mockInput({ agents, actual: load, groups: [mockGroup({ strategy: 'binpack' })] }));
    expect(plan.create.map((p) => p.agent)).toEqual(['a2']);
  });

  it('binpack is the default and fills one agent before the next', () => {
    const g = mockGroup({ count: 3, resources: mockResources({ cpus: 1, mem: GiB }) });
    const plan = schedule(mockInput({ agents: agents.slice(0, 2), groups: [g] }));
    expect(new Set(plan.create.map((p) => p.agent)).size).toBe(1);
  });

  it('binpack skips an agent the task does not fit even if it is fuller', () => {
    const plan = schedule(mockInput({ agents, actual: load, groups: [mockGroup({ resources: mockResources({ cpus: 3, mem: GiB }) })] }));
    expect(plan.create.map((p) => p.agent)).toEqual(['a1']);
  });

  it('spread puts a task on the least used agent', () => {
    const plan = schedule(mockInput({ agents, actual: load, groups: [mockGroup({ strategy: 'spread' })] }));
    expect(plan.create.map((p) => p.agent)).toEqual(['a3']);
  });

  it('spread keeps tasks of one group apart (anti-affinity) even when usage differs', () => {
    const g = mockGroup({ strategy: 'spread', count: 3, resources: mockResources({ cpus: 0.5, mem: GiB }) });
    const plan = schedule(mockInput({ agents, actual: load, groups: [g] }));
    expect(plan.create.map((p) => p.agent).sort()).toEqual(['a1', 'a2', 'a3']);
  });

  it('spread counts kept tasks of the group for anti-affinity', () => {
    const g = mockGroup({ strategy: 'spread', count: 2, resources: mockResources({ cpus: 0.5, mem: GiB }) });
    const empty = [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' })];
    const plan = schedule(mockInput({ agents: empty, actual: [mockTask(g, 0, 'a1')], groups: [g] }));
    expect(plan.create.map((p) => [p.task, p.agent])).toEqual([['p/web/1', 'a2']]);
  });

  it('places larger dominant shares first so they still fit', () => {
    const two = [mockAgent({ name: 'a1' }), mockAgent({ name: 'a2' })];
    const small = mockGroup({ group: 'a-small', count: 4, resources: mockResources({ cpus: 2, mem: GiB }) });
    const big = mockGroup({ group: 'z-big', count: 1, resources: mockResources({ cpus: 8, mem: GiB }) });
    const plan = schedule(mockInput({ agents: two, groups: [small, big] }));
    expect(plan.unplaced).toEqual([]);
    expect(plan.create[0]?.task).toBe('p/z-big/0');
  });

  it('breaks ties with the seed: same seed same plan, different seeds can differ', () => {
    const many = Array.from({ length: 8 }, (_, i) => mockAgent({ name: `a${i}` }));
    const g = mockGroup({ strategy: 'spread', count: 1 });
    const agentFor = (seed: number) => schedule(mockInput({ agents: many, groups: [g], seed })).create[0]?.agent;
    expect(agentFor(42)).toBe(agentFor(42));
    const seen = new Set(Array.from({ length: 20 }, (_, s) => agentFor(s)));
    expect(seen.size).toBeGreaterThan(1);
  });

  it('does not depend on the order of agents in the input', () => {
    const g = mockGroup({ strategy: 'spread', count: 5, resources: mockResources({ cpus: 1, mem: GiB }) });
    const p1 = schedule(mockInput({ agents, actual: load, groups: [g], seed: 7 }));
    const p2 = schedule(mockInput({ agents: [...agents].reverse(), actual: load, groups: [g], seed: 7 }));
    expect(p2.create).toEqual(p1.create);
  });
});
