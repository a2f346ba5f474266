/**
 * The placement pipeline for one task, Nomad style, built in one place:
 *
 *   candidates (pinned agent | preferred agent first | all agents, by name)
 *     → filter  (FEASIBILITY_CHAIN; each rejected agent tallied under its first failing check)
 *     → score   (binpack | spread)
 *     → select  (max score; ties broken by the seeded Rng)
 *
 * A later optimization (equivalence classes, sampling max(2, ⌈log₂ n⌉) agents) slots in between
 * candidates and filter without changing the callers.
 */
import { FEASIBILITY_CHAIN, firstRejection } from './feasibility.js';
import { NO_AGENTS_REASON, RejectionTally } from './rejections.js';
import type { AgentSlot, ClusterLedger } from './ledger.js';
import type { Rng } from './rng.js';
import { scorerFor } from './score.js';
import type { Scorer } from './score.js';
import type { DesiredGroup } from './types.js';

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

/** PlaceOutcome is where a task goes, or why it goes nowhere. */
export type PlaceOutcome = { placed: true; slot: AgentSlot } | { placed: false; reason: string; causes: Record<string, number> };

/** PlaceOptions narrows or biases the candidate agents. */
export interface PlaceOptions {
  /** pinnedAgent is the only candidate. */
  pinnedAgent?: string;
  /** preferredAgent wins outright when it is feasible. */
  preferredAgent?: string;
}

/** candidateSlots returns the agents a task may go to: the pinned one, or all of them. */
export function candidateSlots(ledger: ClusterLedger, opts: PlaceOptions): AgentSlot[] {
  if (opts.pinnedAgent === undefined) return ledger.slots;
  const slot = ledger.slot(opts.pinnedAgent);
  return slot ? [slot] : [];
}

/** filterFeasible keeps the slots passing every feasibility check and tallies the rest per cause. */
export function filterFeasible(slots: readonly AgentSlot[], group: DesiredGroup, tally: RejectionTally): AgentSlot[] {
  const feasible: AgentSlot[] = [];
  for (const slot of slots) {
    const r = firstRejection(FEASIBILITY_CHAIN, slot, group);
    if (r) tally.add(r);
    else feasible.push(slot);
  }
  return feasible;
}

/** selectBest returns the highest-scoring slot, breaking ties with the Rng (drawn only when there is a tie). */
export function selectBest(slots: readonly AgentSlot[], group: DesiredGroup, scorer: Scorer, rng: Rng): AgentSlot | undefined {
  const best: AgentSlot[] = [];
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const slot of slots) bestScore = keepBest(best, bestScore, slot, scorer(slot, group), SCORE_TIE_EPSILON);
  if (best.length <= 1) return best[0];
  return best[rng.pick(best.length)];
}

/** placeTask runs one task of a group through candidates → filter → score → select. It does not reserve. */
export function placeTask(ledger: ClusterLedger, group: DesiredGroup, opts: PlaceOptions, rng: Rng): PlaceOutcome {
  if (ledger.slots.length === 0) return { placed: false, reason: NO_AGENTS_REASON, causes: {} };
  if (opts.preferredAgent !== undefined) {
    const preferred = ledger.slot(opts.preferredAgent);
    if (preferred && !firstRejection(FEASIBILITY_CHAIN, preferred, group)) return { placed: true, slot: preferred };
  }
  const tally = new RejectionTally();
  const feasible = filterFeasible(candidateSlots(ledger, opts), group, tally);
  const slot = selectBest(feasible, group, scorerFor(group.strategy), rng);
  if (slot) return { placed: true, slot };
  return { placed: false, reason: tally.describe(), causes: tally.causes() };
}
