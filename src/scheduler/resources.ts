/**
 * Arithmetic on ResourceVectors: what an agent can give, what a task asks for, and whether it fits.
 */
import type { AgentSnapshot, ResourceVector } from './types.js';

/** RESOURCE_EPSILON absorbs float drift, so ten tasks of 0.1 cpus fit in 1 cpu. */
export const RESOURCE_EPSILON = 1e-6;

/** BUILTIN_DIMENSIONS are the fixed resource dimensions, in the order rejections report them. */
export const BUILTIN_DIMENSIONS = ['cpus', 'mem', 'disk', 'gpus'] as const;

/** BuiltinDimension is one of the fixed resource dimensions. */
export type BuiltinDimension = (typeof BUILTIN_DIMENSIONS)[number];

/** zeroResources returns an empty ResourceVector. */
export function zeroResources(): ResourceVector {
  return { cpus: 0, mem: 0, disk: 0, gpus: 0, scalars: {} };
}

/** copyResources returns a deep copy of a ResourceVector. */
export function copyResources(v: ResourceVector): ResourceVector {
  return { cpus: v.cpus, mem: v.mem, disk: v.disk, gpus: v.gpus, scalars: { ...v.scalars } };
}

/** addResourcesInto adds `sign` × `delta` to `target` in place (target must be owned by the caller). */
export function addResourcesInto(target: ResourceVector, delta: Partial<ResourceVector>, sign: 1 | -1): void {
  for (const dim of BUILTIN_DIMENSIONS) target[dim] += sign * (delta[dim] ?? 0);
  const scalars = delta.scalars;
  if (!scalars) return;
  for (const name in scalars) target.scalars[name] = (target.scalars[name] ?? 0) + sign * (scalars[name] ?? 0);
}

/** allocatableResources is an agent's capacity minus what is reserved for things factory does not manage. */
export function allocatableResources(agent: AgentSnapshot): ResourceVector {
  const out = copyResources(agent.capacity);
  if (agent.reserved) addResourcesInto(out, agent.reserved, -1);
  return out;
}

/** amountOf reads one dimension (builtin or custom scalar) of a vector; a missing scalar is 0. */
export function amountOf(v: ResourceVector, dim: string): number {
  if ((BUILTIN_DIMENSIONS as readonly string[]).includes(dim)) return v[dim as BuiltinDimension];
  return v.scalars[dim] ?? 0;
}

// Demands are read-only during a pass and checked against every agent: remember their dimensions.
const requestedCache = new WeakMap<ResourceVector, readonly string[]>();

/** requestedDimensions lists the dimensions a demand asks for (> 0): builtins first, then scalars by name. */
export function requestedDimensions(demand: ResourceVector): readonly string[] {
  const cached = requestedCache.get(demand);
  if (cached) return cached;
  const dims: string[] = BUILTIN_DIMENSIONS.filter((d) => demand[d] > 0);
  for (const name of Object.keys(demand.scalars).sort()) if ((demand.scalars[name] ?? 0) > 0) dims.push(name);
  requestedCache.set(demand, dims);
  return dims;
}

/** firstShortDimension returns the first dimension where `demand` exceeds `free`, or undefined if it fits. */
export function firstShortDimension(free: ResourceVector, demand: ResourceVector): string | undefined {
  for (const dim of requestedDimensions(demand)) {
    if (amountOf(demand, dim) > amountOf(free, dim) + RESOURCE_EPSILON) return dim;
  }
  return undefined;
}

/** dominantShare is the largest fraction of the cluster total that a demand takes in any dimension (Infinity if the cluster has none of something asked). */
export function dominantShare(demand: ResourceVector, total: ResourceVector): number {
  let share = 0;
  for (const dim of requestedDimensions(demand)) {
    const have = amountOf(total, dim);
    share = Math.max(share, have > 0 ? amountOf(demand, dim) / have : Number.POSITIVE_INFINITY);
  }
  return share;
}
