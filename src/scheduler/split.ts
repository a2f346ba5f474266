/**
 * Level 2, the resource plan: split `total` cpus into VMs of the allowed shapes so that the cpus add
 * up exactly, the VMs fit the free capacity of the given agents, and there are as few VMs as possible.
 *
 *   for c = ⌈total / largest⌉ … ⌊total / smallest⌋          fewest VMs first
 *     for each multiset of c shapes summing to total      more large shapes first (depth-first, pruned)
 *       pack it: shapes largest first, each onto agents with the least free cpus first (best fit),
 *       agents with identical free vectors handled as one class with a count
 *       → the first multiset that packs is the plan
 *
 * Exhaustive over multisets (bounded by MAX_SPLIT_NODES / MAX_SPLIT_PACKS), so a split that greedy
 * largest-first would miss is still found: 60 cpus as 30+20 shapes on agents with 40, 20, 20 free
 * cpus is 3×20, not a failed 2×30.
 */
import { RESOURCE_EPSILON } from './resources.js';
import type { VmShapeVector } from './types.js';

/** MAX_SPLIT_NODES bounds the depth-first search over shape multisets. */
export const MAX_SPLIT_NODES = 200_000;
/** MAX_SPLIT_PACKS bounds how many multisets are tried against the agents. */
export const MAX_SPLIT_PACKS = 2_000;

/** SplitAgent is one candidate agent's free capacity in the split's dims (cpus, mem, disk, gpus, slots). */
export interface SplitAgent {
  /** id is the caller's index of the agent (returned in the assignment). */
  id: number;
  free: number[];
}

/** SplitResult is a resource plan: per VM its shape index (into the caller's shapes) and agent id. */
export type SplitResult =
  | { ok: true; vms: { shape: number; agent: number }[]; tried: number }
  | { ok: false; tried: number; why: 'no-sum' | 'no-fit' | 'budget' };

/** shapeVector is a shape over the split dims; `slots` (maxPerAgent) costs 1 per VM. */
function shapeVector(s: VmShapeVector, withSlots: boolean): number[] {
  return withSlots ? [s.cpus, s.mem, s.disk, s.gpus, 1] : [s.cpus, s.mem, s.disk, s.gpus];
}

interface AgentClass {
  free: number[];
  members: number[];
}

function compareVectors(a: number[], b: number[]): number {
  for (let k = 0; k < a.length; k++) {
    const d = (a[k] ?? 0) - (b[k] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function fitsPerAgent(free: number[], shape: number[]): number {
  let n = Number.POSITIVE_INFINITY;
  for (let k = 0; k < shape.length; k++) {
    const need = shape[k] ?? 0;
    if (need <= 0) continue;
    n = Math.min(n, Math.floor(((free[k] ?? 0) + RESOURCE_EPSILON) / need));
  }
  return n === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : Math.max(0, n);
}

/**
 * packCounts places `counts[j]` VMs of each shape (shapes sorted largest first) onto agent classes,
 * least free cpus first. Returns the assignment (shape order, then agent order) or undefined.
 */
function packCounts(classes: readonly AgentClass[], shapes: number[][], counts: number[], assign: boolean): { shape: number; agent: number }[] | undefined {
  let work: AgentClass[] = classes.map((c) => ({ free: [...c.free], members: c.members }));
  const out: { shape: number; agent: number }[] = [];
  for (let j = 0; j < shapes.length; j++) {
    let left = counts[j] ?? 0;
    if (left === 0) continue;
    const shape = shapes[j] ?? [];
    work.sort((a, b) => compareVectors(a.free, b.free) || (a.members[0] ?? 0) - (b.members[0] ?? 0));
    const next: AgentClass[] = [];
    for (const c of work) {
      const f = left > 0 ? fitsPerAgent(c.free, shape) : 0;
      if (f === 0) {
        next.push(c);
        continue;
      }
      const take = Math.min(left, f * c.members.length);
      const full = Math.floor(take / f);
      const rem = take - full * f;
      left -= take;
      const used = c.members.slice(0, full + (rem > 0 ? 1 : 0));
      if (assign) {
        for (let m = 0; m < full; m++) for (let r = 0; r < f; r++) out.push({ shape: j, agent: used[m] ?? 0 });
        for (let r = 0; r < rem; r++) out.push({ shape: j, agent: used[full] ?? 0 });
      }
      if (full > 0) next.push({ free: c.free.map((v, k) => v - f * (shape[k] ?? 0)), members: c.members.slice(0, full) });
      if (rem > 0) next.push({ free: c.free.map((v, k) => v - rem * (shape[k] ?? 0)), members: c.members.slice(full, full + 1) });
      const rest = c.members.slice(full + (rem > 0 ? 1 : 0));
      if (rest.length > 0) next.push({ free: c.free, members: rest });
    }
    if (left > 0) return undefined;
    work = next;
  }
  return out;
}

/**
 * splitTotal finds the resource plan for `total` cpus over `shapes` on `agents`. maxPerAgent, when
 * given, caps the VMs of the plan per agent.
 */
export function splitTotal(total: number, shapes: readonly VmShapeVector[], agents: readonly SplitAgent[], maxPerAgent?: number): SplitResult {
  const withSlots = maxPerAgent !== undefined;
  // Distinct shapes, largest cpus first (then larger mem first); remember each one's caller index.
  const order = shapes
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => s.cpus > 0)
    .sort((a, b) => b.s.cpus - a.s.cpus || b.s.mem - a.s.mem || a.i - b.i)
    .filter(({ s }, k, arr) => k === 0 || compareVectors(shapeVector(s, false), shapeVector(arr[k - 1]?.s ?? s, false)) !== 0);
  if (order.length === 0) return { ok: false, tried: 0, why: 'no-sum' };
  const vecs = order.map(({ s }) => shapeVector(s, withSlots));
  const cpus = order.map(({ s }) => s.cpus);
  const largest = cpus[0] ?? 1;
  const smallest = Math.min(...cpus);

  // Agent classes: identical free vectors share one class (members in the caller's order).
  const byKey = new Map<string, AgentClass>();
  for (const a of agents) {
    const free = withSlots ? [...a.free.slice(0, 4), maxPerAgent ?? 0] : a.free.slice(0, 4);
    const key = free.join(',');
    const c = byKey.get(key);
    if (c) c.members.push(a.id);
    else byKey.set(key, { free, members: [a.id] });
  }
  const classes = [...byKey.values()];

  let nodes = 0;
  let packs = 0;
  let sumFound = false;
  const counts = new Array<number>(order.length).fill(0);
  // Suffix bounds of cpus per VM among shapes j…end.
  const maxFrom = cpus.map((_, j) => Math.max(...cpus.slice(j)));
  const minFrom = cpus.map((_, j) => Math.min(...cpus.slice(j)));

  const search = (j: number, remaining: number, vmsLeft: number): { shape: number; agent: number }[] | 'stop' | undefined => {
    if (++nodes > MAX_SPLIT_NODES) return 'stop';
    if (j === order.length - 1) {
      const c = cpus[j] ?? 1;
      if (Math.abs(remaining - vmsLeft * c) > RESOURCE_EPSILON) return undefined;
      counts[j] = vmsLeft;
      sumFound = true;
      if (++packs > MAX_SPLIT_PACKS) return 'stop';
      const packed = packCounts(classes, vecs, counts, false);
      counts[j] = 0;
      return packed ? packCounts(classes, vecs, [...counts.slice(0, j), vmsLeft], true) : undefined;
    }
    const c = cpus[j] ?? 1;
    let hi = Math.min(vmsLeft, Math.floor(remaining / c + RESOURCE_EPSILON));
    const minNext = minFrom[j + 1] ?? 0;
    if (c > minNext) hi = Math.min(hi, Math.floor((remaining - vmsLeft * minNext) / (c - minNext) + RESOURCE_EPSILON));
    for (let n = hi; n >= 0; n--) {
      const rem = remaining - n * c;
      const left = vmsLeft - n;
      // The rest must be reachable with `left` VMs of the remaining shapes.
      if (rem > left * (maxFrom[j + 1] ?? 0) + RESOURCE_EPSILON) break;
      if (rem < left * (minFrom[j + 1] ?? 0) - RESOURCE_EPSILON) continue;
      counts[j] = n;
      const r = search(j + 1, rem, left);
      counts[j] = 0;
      if (r) return r;
    }
    return undefined;
  };

  const cMin = Math.ceil(total / largest - RESOURCE_EPSILON);
  const cMax = Math.floor(total / smallest + RESOURCE_EPSILON);
  for (let c = cMin; c <= cMax; c++) {
    const r = search(0, total, c);
    if (r === 'stop') return { ok: false, tried: packs, why: 'budget' };
    if (r) return { ok: true, tried: packs, vms: r.map((v) => ({ shape: order[v.shape]?.i ?? 0, agent: v.agent })) };
  }
  return { ok: false, tried: packs, why: sumFound ? 'no-fit' : 'no-sum' };
}
