/**
 * How a deployment's step reaches the scheduler: the scheduler itself is not told about deployments.
 * It sees the group with count N + extra (the extra slots are new task indices it places with its
 * usual rules: resources, constraints, DRF), the old tasks chosen for replacement with their real
 * spec hash (so it updates them in place: the old copy stops, the new one starts at the same index,
 * on the same agent when it fits) and every other old task as if it ran the new spec already (so it
 * keeps it). A dead old task is then restarted on the new spec, which the next step counts in flight.
 * A resource plan is presented with its step's `roll` instead (its tasks as they are): the scheduler
 * stops the VMs it names and places the new ones, one by one, through its placement pipeline.
 */
import { groupKey } from '../scheduler/ledger.js';
import type { ActualTask, DesiredGroup, ResourcePlanRoll } from '../scheduler/types.js';

/** GroupShape is how one group under a deployment is presented to the scheduler in this pass. */
export interface GroupShape {
  /** toHash is the spec hash the deployment rolls to. */
  toHash: string;
  /** extra slots: the scheduler sees count + extra. */
  extra: number;
  /** replace holds the old tasks replaced now. */
  replace: ReadonlySet<string>;
  /** roll is a resource plan's step (resource-roll.ts): the scheduler stops and starts those VMs and keeps the rest. */
  roll?: ResourcePlanRoll;
}

/** shapeInput presents the groups under deployments (by `plan/group`) to the scheduler; other groups and tasks pass as they are. */
export function shapeInput(groups: DesiredGroup[], actual: ActualTask[], shapes: ReadonlyMap<string, GroupShape>): { groups: DesiredGroup[]; actual: ActualTask[] } {
  if (shapes.size === 0) return { groups, actual };
  return {
    groups: groups.map((g) => {
      const s = shapes.get(groupKey(g));
      return s?.roll ? { ...g, roll: s.roll } : s && !g.everyAgent ? { ...g, count: g.count + s.extra } : g;
    }),
    actual: actual.map((t) => {
      const s = shapes.get(groupKey(t));
      return s && !s.roll && t.specHash !== s.toHash && !s.replace.has(t.task) ? { ...t, specHash: s.toHash } : t;
    }),
  };
}
