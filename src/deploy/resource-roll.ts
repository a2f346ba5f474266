/**
 * A resource plan's deployment (a VM group with `total` + `shapes`: its VMs differ in shape): one step,
 * pure like engine.ts's, but its batches are counted in resources (cpus, the unit of `total`), not in
 * tasks. T is the total; old VMs run another spec hash than the deployment's, new ones run it.
 *
 * Rules, in order:
 * 1. The split, once, at the first step: the new VMs on the new spec that already run and fit in the
 *    total are kept in it (a revert finds the old VMs it returns to), the rest of T is split into the
 *    fewest VMs of the new shapes (split.ts, without agents: where each VM goes is the scheduler's, at
 *    its batch). B, the batch, is the cpus of the maxParallel largest old VMs; R, the surge room, the
 *    cpus of the maxSurge largest (0 without surge). Both and the split are kept on the record.
 * 2. Progress and failure as engine.ts's rules 1 and 2 (a new VM counts healthy, fails, the deadlines).
 * 3. Paused: nothing new starts, nothing old stops.
 * 4. Rolling. C, the capacity, is the cpus of the healthy old VMs and of the new ones counted healthy;
 *    in use is the cpus of the old VMs left and of the new ones started; in flight the cpus of the new
 *    ones started and not yet counted. Old VMs stop, dead ones first, then unhealthy ones, then the
 *    largest, while C stays ≥ T − U (U = B with maxSurge 0: the old VMs stop first and capacity dips by
 *    at most B; U = 0 with surge: an old VM stops only once new ones carry its capacity). New VMs start,
 *    largest first, while in flight stays ≤ B and in use ≤ T + R. A new VM takes the lowest task index
 *    free at its start (an old VM stopped in the same step frees its own: the scheduler then replaces
 *    it in place) and keeps it: a VM not seen yet (unplaced, vanished) is asked for again at the same
 *    index, never a second time elsewhere.
 * 5. Done: no old VM left and every VM of the split counted healthy.
 */
import { splitTotal } from '../scheduler/split.js';
import type { VmShape } from '../spec/model.js';
import { failIfDue, healthyNow, trackProgress, type GroupTask, type StepEvent } from './engine.js';
import type { DeploymentRecord, SplitVm } from './types.js';

const EPS = 1e-9;

/** RollTask is one VM of the group as the step sees it, with its size. */
export interface RollTask extends GroupTask {
  shape: VmShape;
}

/** RollInput is everything one step of a resource plan's deployment needs. */
export interface RollInput {
  deployment: DeploymentRecord;
  /** hasHealthCheck: the group's health check decides health; without one, running (powered on) is healthy. */
  hasHealthCheck: boolean;
  tasks: RollTask[];
  now: number;
}

/** RollStart is one new VM the scheduler places now: its index and shape. */
export interface RollStart {
  index: number;
  shape: VmShape;
}

/** RollDecision is what a step decided: the record as it stands, the old VMs to stop and the new ones to start now. */
export interface RollDecision {
  deployment: DeploymentRecord;
  changed: boolean;
  stop: string[];
  start: RollStart[];
  revert: boolean;
  events: StepEvent[];
}

const LIVE = new Set(['running', 'pending']);

/** newSplit is rule 1's split of `total` cpus: the live new VMs that fit in it kept (largest first), the rest the fewest VMs of `shapes`; undefined when the rest is no sum of them. */
export function newSplit(total: number, shapes: readonly VmShape[], fresh: readonly { index: number; shape: VmShape; live: boolean }[]): SplitVm[] | undefined {
  const kept: SplitVm[] = [];
  let left = total;
  const candidates = fresh.filter((t) => t.live && shapes.some((s) => sameShape(s, t.shape))).sort((a, b) => b.shape.cpus - a.shape.cpus || a.index - b.index);
  for (const t of candidates) {
    if (t.shape.cpus > left + EPS) continue;
    kept.push({ ...t.shape, index: t.index });
    left -= t.shape.cpus;
  }
  const rest: SplitVm[] = [];
  if (left > EPS) {
    const r = splitTotal(left, shapes, [{ id: 0, free: [Infinity, Infinity, Infinity, Infinity] }]);
    if (!r.ok) return undefined;
    for (const vm of r.vms) {
      const s = shapes[vm.shape]!;
      rest.push({ cpus: s.cpus, mem: s.mem, disk: s.disk, gpus: s.gpus });
    }
  }
  return [...kept, ...rest].sort((a, b) => b.cpus - a.cpus || b.mem - a.mem || (a.index ?? Infinity) - (b.index ?? Infinity));
}

/** stepResourcePlan decides one step of a resource plan's deployment (see the rules at the top of this file). */
export function stepResourcePlan(input: RollInput): RollDecision {
  const { now, hasHealthCheck } = input;
  const iso = new Date(now).toISOString();
  const before = input.deployment;
  const d: DeploymentRecord = { ...before, tasks: before.tasks.map((t) => ({ ...t })), ...(before.split ? { split: before.split.map((v) => ({ ...v })) } : {}) };
  const events: StepEvent[] = [];
  const cpusOf = new Map(input.tasks.map((t) => [t.task, t.shape.cpus]));
  const cpus = (t: GroupTask) => cpusOf.get(t.task) ?? 0;
  const decision = (stop: string[], start: RollStart[], revert = false): RollDecision => {
    const changed = JSON.stringify(d) !== JSON.stringify(before);
    if (changed) d.updatedAt = iso;
    return { deployment: changed ? d : before, changed, stop, start, revert, events };
  };
  const { fresh, old, newlyFailed, byTask } = trackProgress(d, input.tasks, Infinity, hasHealthCheck, now, events);
  if (!isRunningOrPaused(d)) return decision([], []);

  // 1. the split, once
  const T = d.toSpec.total?.cpus ?? 0;
  if (!d.split) {
    const shapes = d.toSpec.shapes ?? [];
    const split = newSplit(T, shapes, fresh.map((t) => ({ index: t.index, shape: (t as RollTask).shape, live: LIVE.has(t.state) })));
    const byCpus = old.map(cpus).sort((a, b) => b - a);
    const sum = (n: number) => byCpus.slice(0, n).reduce((a, b) => a + b, 0);
    if (!split) {
      d.status = 'failed';
      d.finishedAt = iso;
      d.message = `${T} cpus is not a sum of VMs of ${shapes.map((s) => s.cpus).join(', ')} cpus`;
      events.push({ kind: 'deployment-failed', message: `${d.plan}/${d.group} failed: ${d.message}` });
      return decision([], []);
    }
    const largest = Math.max(0, ...split.map((v) => v.cpus));
    d.split = split;
    d.batchCpus = Math.max(sum(d.policy.maxParallel), largest);
    d.surgeCpus = d.policy.maxSurge > 0 ? Math.max(sum(d.policy.maxSurge), largest) : 0;
  }

  // 2. failure
  const failed = failIfDue(d, newlyFailed, now, events);
  if (failed) return decision([], [], failed.revert);

  // 3. paused (or waiting): nothing moves
  if (d.status !== 'running') return decision([], []);

  const split = d.split;
  const freshAt = new Map(fresh.filter((t) => LIVE.has(t.state)).map((t) => [t.index, t]));
  const counted = (v: SplitVm) => {
    const t = v.index === undefined ? undefined : freshAt.get(v.index);
    return t !== undefined && byTask.get(t.task)?.state === 'healthy';
  };
  const splitIndices = new Set(split.flatMap((v) => (v.index === undefined ? [] : [v.index])));
  // a task on the new spec outside the split (none is started so; one left by hand) goes
  const strays = fresh.filter((t) => !splitIndices.has(t.index));

  // 5. done
  if (old.length === 0 && split.every(counted)) {
    if (strays.length > 0) return decision(strays.map((t) => t.task), []);
    d.status = 'succeeded';
    d.finishedAt = iso;
    d.message = `${split.length} VM${split.length === 1 ? '' : 's'} on the new spec (${split.map((v) => v.cpus).join(' + ')} cpus)`;
    delete d.unplaced;
    events.push({ kind: 'deployment-succeeded', message: `${d.plan}/${d.group} rolled out: ${d.message}` });
    return decision([], []);
  }

  // 4. rolling
  const B = d.batchCpus ?? 0;
  const R = d.surgeCpus ?? 0;
  const U = d.policy.maxSurge > 0 ? 0 : B;
  const started = split.filter((v) => v.index !== undefined);
  let capacity = old.filter((t) => healthyNow(t, hasHealthCheck)).reduce((a, t) => a + cpus(t), 0) + split.filter(counted).reduce((a, v) => a + v.cpus, 0);
  let inUse = old.filter((t) => LIVE.has(t.state)).reduce((a, t) => a + cpus(t), 0) + started.reduce((a, v) => a + v.cpus, 0);
  let inFlight = started.filter((v) => !counted(v)).reduce((a, v) => a + v.cpus, 0);
  const rank = (t: GroupTask) => (!LIVE.has(t.state) ? 0 : !healthyNow(t, hasHealthCheck) ? 1 : 2);
  const stop: string[] = strays.map((t) => t.task);
  const stopped = new Set<number>();
  for (const t of [...old].sort((a, b) => rank(a) - rank(b) || cpus(b) - cpus(a) || a.index - b.index)) {
    const cost = healthyNow(t, hasHealthCheck) ? cpus(t) : 0;
    if (cost > 0 && capacity - cost < T - U - EPS) continue;
    stop.push(t.task);
    stopped.add(t.index);
    capacity -= cost;
    if (LIVE.has(t.state)) inUse -= cpus(t);
  }
  const used = new Set<number>([...old.filter((t) => !stopped.has(t.index)).map((t) => t.index), ...fresh.map((t) => t.index), ...splitIndices]);
  // a VM started but not seen (unplaced, vanished) is asked for again at its index, once that index is free
  const start: RollStart[] = started.filter((v) => !fresh.some((t) => t.index === v.index) && !old.some((t) => t.index === v.index && !stopped.has(t.index))).map((v) => ({ index: v.index!, shape: shapeFields(v) }));
  for (const v of split) {
    if (v.index !== undefined) continue;
    if (inFlight + v.cpus > B + EPS || inUse + v.cpus > T + R + EPS) continue;
    let i = 0;
    while (used.has(i)) i++;
    used.add(i);
    v.index = i;
    inFlight += v.cpus;
    inUse += v.cpus;
    start.push({ index: i, shape: shapeFields(v) });
  }
  return decision(stop, start);
}

function isRunningOrPaused(d: DeploymentRecord): boolean {
  return d.status === 'running' || d.status === 'paused' || d.status === 'waiting-promotion';
}

function sameShape(a: VmShape, b: VmShape): boolean {
  return Math.abs(a.cpus - b.cpus) < EPS && a.mem === b.mem && a.disk === b.disk && a.gpus === b.gpus;
}

function shapeFields(v: SplitVm): VmShape {
  return { cpus: v.cpus, mem: v.mem, disk: v.disk, gpus: v.gpus };
}
