/**
 * From validated plans to the scheduler's desired state, and from a placement to the exact run
 * spec an executor receives. The spec hash covers everything that needs a restart when it changes.
 */
import { createHash } from 'node:crypto';
import type { GroupSpec, PlanSpec } from '../spec/model.js';
import type { DesiredGroup, Placement } from '../scheduler/types.js';
import type { TaskRunSpec } from '../protocol/messages.js';

/** specHashOf hashes the parts of a group that a running task embodies (not count or placement). */
export function specHashOf(plan: PlanSpec, g: GroupSpec): string {
  const material = {
    kind: g.kind,
    driver: g.driver,
    command: g.command ?? null,
    env: sortKeys(g.env),
    workingDir: g.workingDir ?? null,
    image: g.image ?? null,
    resources: { ...g.resources, scalars: sortKeys(g.resources.scalars) },
    stopGraceMs: g.stopGraceMs,
    health: g.health ?? null,
    subnet: g.subnet ?? null,
    volumes: g.volumes ?? null,
    project: plan.project,
  };
  return createHash('sha256').update(JSON.stringify(material)).digest('hex').slice(0, 16);
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** desiredGroupsOf turns plans into the scheduler's DesiredGroup list, in file order. */
export function desiredGroupsOf(plans: PlanSpec[]): DesiredGroup[] {
  const out: DesiredGroup[] = [];
  for (const p of plans) {
    for (const g of p.groups) {
      out.push({
        plan: p.name,
        group: g.name,
        project: p.project,
        kind: g.kind,
        driver: g.driver,
        count: g.count,
        everyAgent: g.everyAgent,
        maxPerAgent: g.maxPerAgent,
        resources: g.resources,
        constraints: g.constraints,
        specHash: specHashOf(p, g),
        strategy: g.strategy,
        restart: g.restart,
        placement: p.placement,
        ...(g.total && g.shapes ? { total: { ...g.total }, shapes: g.shapes.map((sh) => ({ ...sh })) } : {}),
      });
    }
  }
  return out;
}

/** GroupIndex finds the plan and group spec of a task id. */
export class GroupIndex {
  private readonly byKey = new Map<string, { plan: PlanSpec; group: GroupSpec }>();

  constructor(plans: PlanSpec[]) {
    for (const plan of plans) for (const group of plan.groups) this.byKey.set(`${plan.name}/${group.name}`, { plan, group });
  }

  /** get returns the plan and group of `plan/group`. */
  get(plan: string, group: string): { plan: PlanSpec; group: GroupSpec } | undefined {
    return this.byKey.get(`${plan}/${group}`);
  }
}

/** taskIndexOf returns the index part of a task id `plan/group/index`. */
export function taskIndexOf(task: string): string {
  return task.slice(task.lastIndexOf('/') + 1);
}

/** runSpecOf builds the executor's TaskRunSpec for a placement of a group. */
export function runSpecOf(p: Placement, plan: PlanSpec, g: GroupSpec): TaskRunSpec {
  return {
    task: p.task,
    driver: g.driver,
    specHash: p.specHash,
    command: g.command ?? [],
    env: {
      ...g.env,
      FACTORY_TASK: p.task,
      FACTORY_PLAN: plan.name,
      FACTORY_GROUP: g.name,
      FACTORY_PROJECT: plan.project,
      FACTORY_TASK_INDEX: taskIndexOf(p.task),
      FACTORY_AGENT: p.agent,
    },
    workingDir: g.workingDir,
    resources: p.resources, // a resource plan's VMs differ in shape: the placement's resources are the VM's
    labels: { plan: plan.name, group: g.name, project: plan.project },
    stopGraceMs: g.stopGraceMs,
    image: g.image,
    ...(g.kind === 'vm' ? { vm: { ...(g.subnet ? { subnet: g.subnet } : {}), ...(g.volumes?.length ? { volumes: [...g.volumes] } : {}) } } : {}),
    restart: g.restart,
    ...(g.health ? { health: { ...g.health } } : {}),
  };
}
