/**
 * Building a PlanSpec's groups from a validated plan: the defaults a group gets for what it leaves
 * out, and the `processes` / `containers` / `vms` sections as kinds and drivers.
 */
import type { Driver, GroupKind, TaskResources } from '../scheduler/types.js';
import type { GroupSpec, RestartBackoffSpec } from './model.js';
import type { RawPlan } from './schema.js';
import type { SpecSource } from './source.js';
import { updateSettingsOf } from './update.js';

/** DEFAULT_PROCESS_CPUS is the cpus a process or container task asks for when `resources.cpus` is absent. */
export const DEFAULT_PROCESS_CPUS = 0.1;
/** DEFAULT_PROCESS_MEM is the mem (bytes) a process or container task asks for when `resources.mem` is absent: 64Mi. */
export const DEFAULT_PROCESS_MEM = 64 * 1024 * 1024;
/** DEFAULT_STOP_GRACE_MS is the default `stopGrace`: 10s. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** DEFAULT_HEALTH_INTERVAL_MS is the default `health.interval`: 10s. */
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000;

/** DEFAULT_RESTART_BACKOFF is a group's `restartBackoff` when it says nothing: {initial: 1s, factor: 2, max: 5m}. */
export const DEFAULT_RESTART_BACKOFF: Readonly<RestartBackoffSpec> = Object.freeze({ initialMs: 1000, factor: 2, maxMs: 300_000 });

/** PLAN_SECTIONS are a plan's group sections, each with the kind and driver of its groups. */
export const PLAN_SECTIONS = [
  ['processes', 'process', 'process'],
  ['containers', 'container', 'docker'],
  ['vms', 'vm', 'libvirt'],
] as const;

/** RawGroup is one validated entry of any group section. */
export type RawGroup = NonNullable<RawPlan['processes']>[number] &
  Partial<NonNullable<RawPlan['vms']>[number]> & { image?: string };

/** taskResources is what one task asks for, defaults applied (VMs have none: they say cpus and mem). */
export function taskResources(r: RawGroup['resources'], kind: GroupKind): TaskResources {
  const { cpus, mem, disk, gpus, ports, ...rest } = r ?? {};
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(rest)) if (typeof v === 'number') scalars[k] = v;
  const isVm = kind === 'vm';
  return {
    cpus: (cpus as number | undefined) ?? (isVm ? 0 : DEFAULT_PROCESS_CPUS),
    mem: (mem as number | undefined) ?? (isVm ? 0 : DEFAULT_PROCESS_MEM),
    disk: (disk as number | undefined) ?? 0,
    gpus: (gpus as number | undefined) ?? 0,
    scalars,
    ports: (ports as number[] | undefined) ?? [],
  };
}

/** buildGroup turns one validated group into a GroupSpec, with its position in the file. */
export function buildGroup(src: SpecSource, section: string, index: number, g: RawGroup, kind: GroupKind, driver: Driver): GroupSpec {
  const { line, col } = src.positionOf([section, index]);
  const out: GroupSpec = {
    name: g.name,
    kind,
    driver,
    count: g.count,
    everyAgent: g.everyAgent,
    resources: taskResources(g.resources, kind),
    constraints: g.constraints,
    strategy: g.strategy,
    env: g.env,
    stopGraceMs: g.stopGrace ?? DEFAULT_STOP_GRACE_MS,
    restart: g.restart,
    restartBackoff: {
      initialMs: g.restartBackoff?.initial ?? DEFAULT_RESTART_BACKOFF.initialMs,
      factor: g.restartBackoff?.factor ?? DEFAULT_RESTART_BACKOFF.factor,
      maxMs: g.restartBackoff?.max ?? DEFAULT_RESTART_BACKOFF.maxMs,
    },
    line,
    col,
  };
  if (g.maxPerAgent !== undefined) out.maxPerAgent = g.maxPerAgent;
  if (g.command !== undefined) out.command = g.command;
  if (g.workingDir !== undefined) out.workingDir = g.workingDir;
  if (g.image !== undefined) out.image = g.image;
  if (g.health) {
    const h = g.health;
    out.health = { intervalMs: h.interval ?? DEFAULT_HEALTH_INTERVAL_MS };
    if (h.http !== undefined) out.health.http = h.http;
    if (h.tcp !== undefined) out.health.tcp = h.tcp;
    if (h.command !== undefined) out.health.command = h.command;
    if (h.port !== undefined) out.health.port = h.port;
  }
  if (g.update) out.update = updateSettingsOf(g.update);
  if (g.total) {
    // A resource plan: the scheduler splits `total` into `shapes`; count and resources are not used.
    out.count = 0;
    out.total = { cpus: g.total.cpus };
    out.shapes = (g.shapes ?? []).map((s) => ({ cpus: s.cpus, mem: s.mem, disk: s.disk ?? 0, gpus: s.gpus ?? 0 }));
  }
  if (g.subnet !== undefined) out.subnet = g.subnet;
  if (g.volumes !== undefined) out.volumes = g.volumes;
  return out;
}
