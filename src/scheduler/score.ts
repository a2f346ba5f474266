/**
 * Scorers rank feasible agents for one task (higher is better). Scores are computed as if the task
 * were already placed, with each dimension normalized by the agent's allocatable amount. Each scorer
 * is written once with two forms: `score` on AgentSlot objects (the reference path) and `pack`, the
 * same arithmetic on the ledger's typed arrays for the hot loop (test/scheduler/checkers.test.ts
 * checks that they agree). Select keeps the best score, ties broken by the seeded Rng.
 */
import type { AgentSlot, ClusterLedger, GroupDemand } from './ledger.js';
import { groupKey } from './ledger.js';
import { amountOf, requestedDimensions } from './resources.js';
import type { Rng } from './rng.js';
import type { DesiredGroup, Strategy, TaskResources } from './types.js';

const scoredCache = new WeakMap<TaskResources, readonly string[]>();

/** PackedScore scores slot i for the group a scorer was packed for. */
export type PackedScore = (i: number) => number;

/** Scorer returns how much an agent is preferred for a group's next task (higher is better). */
export interface Scorer {
  /** name is the strategy the scorer implements. */
  readonly name: Strategy;
  /** score is the reference form on an AgentSlot. */
  score(slot: AgentSlot, group: DesiredGroup): number;
  /** pack binds the scorer to a group on the ledger's typed arrays (same numbers as `score`). */
  pack(ledger: ClusterLedger, group: DesiredGroup, demand: GroupDemand): PackedScore;
}

/**
 * usedFractionAfter is the agent's average used fraction after placing the task, over cpus and mem
 * plus every other dimension the task asks for (dimensions the agent has none of are skipped).
 */
export function usedFractionAfter(slot: AgentSlot, group: DesiredGroup): number {
  let dims = scoredCache.get(group.resources);
  if (!dims) scoredCache.set(group.resources, (dims = [...new Set(['cpus', 'mem', ...requestedDimensions(group.resources)])]));
  let sum = 0;
  let n = 0;
  for (const dim of dims) {
    const cap = amountOf(slot.allocatable, dim);
    if (cap <= 0) continue;
    const freeAfter = amountOf(slot.free, dim) - amountOf(group.resources, dim);
    sum += Math.min(1, Math.max(0, 1 - freeAfter / cap));
    n += 1;
  }
  return n === 0 ? 0 : sum / n;
}

/** packedUsedFractionAfter is usedFractionAfter on the ledger's arrays (`scored` holds the same dims in the same order). */
function packedUsedFractionAfter(ledger: ClusterLedger, demand: GroupDemand): PackedScore {
  const D = ledger.dims.length;
  const { scored, amount } = demand;
  const free = ledger.free;
  const allocatable = ledger.allocatable;
  return (i) => {
    const row = i * D;
    let sum = 0;
    let n = 0;
    for (let j = 0; j < scored.length; j++) {
      const k = scored[j] ?? -1;
      if (k < 0) continue;
      const cap = allocatable[row + k] ?? 0;
      if (cap <= 0) continue;
      const after = (free[row + k] ?? 0) - (amount[k] ?? 0);
      sum += Math.min(1, Math.max(0, 1 - after / cap));
      n += 1;
    }
    return n === 0 ? 0 : sum / n;
  };
}

/** scoreBinpack prefers the agent left fullest by the placement (best fit), so whole agents stay free for big tasks. */
export const scoreBinpack: Scorer = {
  name: 'binpack',
  score: (slot, group) => usedFractionAfter(slot, group),
  pack: (ledger, _group, demand) => packedUsedFractionAfter(ledger, demand),
};

/**
 * scoreSpread prefers the least used agent and penalizes each task of the same group already on it
 * by a full point (anti-affinity dominates utilization), so a group round-robins across agents.
 */
export const scoreSpread: Scorer = {
  name: 'spread',
  score: (slot, group) => 1 - usedFractionAfter(slot, group) - (slot.groupCounts.get(groupKey(group)) ?? 0),
  pack: (ledger, group, demand) => {
    const used = packedUsedFractionAfter(ledger, demand);
    const key = groupKey(group);
    const slots = ledger.slots;
    return (i) => 1 - used(i) - (slots[i]?.groupCounts.get(key) ?? 0);
  },
};

/** scorerFor returns the scorer of a strategy (binpack by default). */
export function scorerFor(strategy: Strategy | undefined): Scorer {
  return strategy === 'spread' ? scoreSpread : scoreBinpack;
}

/** SCORE_TIE_EPSILON is how close two scores must be to count as a tie. */
export const SCORE_TIE_EPSILON = 1e-9;

/**
 * keepBest is the tie rule of select, for both the reference path (slots) and the fast path (agent
 * indices): a score above the best by more than `epsilon` starts `best` anew, one within `epsilon`
 * of it joins the tie. Returns the best score so far.
 */
export function keepBest<T>(best: T[], bestScore: number, item: T, score: number, epsilon: number): number {
  if (score > bestScore + epsilon) {
    best.length = 0;
    best.push(item);
    return score;
  }
  if (score >= bestScore - epsilon) best.push(item);
  return bestScore;
}

/** selectBest returns the highest-scoring slot, breaking ties with the Rng (drawn only when there is a tie). */
export function selectBest(slots: readonly AgentSlot[], group: DesiredGroup, scorer: Scorer, rng: Rng): AgentSlot | undefined {
  const best: AgentSlot[] = [];
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const slot of slots) bestScore = keepBest(best, bestScore, slot, scorer.score(slot, group), SCORE_TIE_EPSILON);
  if (best.length <= 1) return best[0];
  return best[rng.pick(best.length)];
}
