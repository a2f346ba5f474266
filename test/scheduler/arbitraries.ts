/**
 * fast-check generators the scheduler's property tests share (checkers.test.ts, properties.test.ts):
 * small random task resources, agent capacities and agents, so each test file keeps only the
 * generators of what it is about (constraints, groups, tasks).
 */
import fc from 'fast-check';
import type { AgentSnapshot, Driver, ResourceVector, TaskResources } from '../../src/scheduler/types.js';

/** DRIVERS are every task driver. */
export const DRIVERS: Driver[] = ['process', 'docker', 'libvirt'];

/** resourcesArb is a task's demand: quarter cpus up to 3, a few units of the rest, maybe an `ssd` scalar and ports. */
export const resourcesArb: fc.Arbitrary<TaskResources> = fc.record({
  cpus: fc.integer({ min: 0, max: 12 }).map((n) => n / 4),
  mem: fc.integer({ min: 0, max: 8 }),
  disk: fc.integer({ min: 0, max: 3 }),
  gpus: fc.integer({ min: 0, max: 1 }),
  scalars: fc.oneof(fc.constant({}), fc.record({ ssd: fc.integer({ min: 0, max: 2 }) })),
  ports: fc.subarray([80, 443]),
});

/** capacityArb is an agent's capacity: whole units, maybe an `ssd` scalar. */
export const capacityArb: fc.Arbitrary<ResourceVector> = fc.record({
  cpus: fc.integer({ min: 0, max: 8 }),
  mem: fc.integer({ min: 0, max: 16 }),
  disk: fc.integer({ min: 0, max: 6 }),
  gpus: fc.integer({ min: 0, max: 2 }),
  scalars: fc.oneof(fc.constant({}), fc.record({ ssd: fc.integer({ min: 0, max: 4 }) })),
});

/**
 * agentsArb is a list of agents a0, a1, … in idcs bj1/sh2 and the given clusters, mostly ready, maybe
 * with reserved cpus and a `rack` attribute, each with some of the drivers.
 */
export function agentsArb(opts: { clusters: string[]; minLength?: number; maxLength: number }): fc.Arbitrary<AgentSnapshot[]> {
  return fc
    .array(
      fc.record({
        idc: fc.constantFrom('bj1', 'sh2'),
        cluster: fc.constantFrom(...opts.clusters),
        state: fc.constantFrom('ready', 'ready', 'ready', 'lost', 'draining', 'down'),
        capacity: capacityArb,
        reserved: fc.option(fc.record({ cpus: fc.integer({ min: 0, max: 2 }) }), { nil: undefined }),
        rack: fc.option(fc.constantFrom('r1', 'r2', 'r9', '10'), { nil: undefined }),
        drivers: fc.subarray(DRIVERS),
      }),
      opts.minLength === undefined ? { maxLength: opts.maxLength } : { minLength: opts.minLength, maxLength: opts.maxLength },
    )
    .map((as) =>
      as.map(({ rack, reserved, ...a }, i) => ({
        name: `a${i}`,
        ...a,
        ...(reserved ? { reserved } : {}),
        attributes: (rack === undefined ? {} : { rack }) as Record<string, string>,
      })),
    );
}
