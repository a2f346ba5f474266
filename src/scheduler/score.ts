/**
 * Scorers rank feasible agents for one task (higher is better). Scores are computed as if the task
 * were already placed, with each dimension normalized by the agent's allocatable amount.
 */
import type { AgentSlot } from './ledger.js';
import { groupKey } from './ledger.js';
import { amountOf, requestedDimensions } from './resources.js';
import type { DesiredGroup, Strategy, TaskResources } from './types.js';

const scoredCache = new WeakMap<TaskResources, readonly string[]>();

/** Scorer returns how much an agent is preferred for a group's next task (higher is better). */
export type Scorer = (slot: AgentSlot, group: DesiredGroup) => number;

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

/** scoreBinpack prefers the agent left fullest by the placement (best fit), so whole agents stay free for big tasks. */
export const scoreBinpack: Scorer = (slot, group) => usedFractionAfter(slot, group);

/**
 * scoreSpread prefers the least used agent and penalizes each task of the same group already on it
 * by a full point (anti-affinity dominates utilization), so a group round-robins across agents.
 */
export const scoreSpread: Scorer = (slot, group) =>
  1 - usedFractionAfter(slot, group) - (slot.groupCounts.get(groupKey(group)) ?? 0);

/** scorerFor returns the scorer of a strategy (binpack by default). */
export function scorerFor(strategy: Strategy | undefined): Scorer {
  return strategy === 'spread' ? scoreSpread : scoreBinpack;
}
