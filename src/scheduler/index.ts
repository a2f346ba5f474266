/**
 * The scheduler: a pure function from a cluster snapshot, the desired state of some plans and a seed
 * to a plan of creates, stops and keeps, with reasons for everything it could not place.
 */
export type * from './types.js';
export { schedule, orderRequests } from './schedule.js';
export { matchConstraint, compareAttributeValues } from './constraints-match.js';
export { reconcile, taskId, parseTaskIndex, isLive } from './reconcile.js';
export type { PlacementRequest, Reconciliation } from './reconcile.js';
export { placeTask, candidateSlots, filterFeasible, selectBest } from './pipeline.js';
export type { PlaceOutcome, PlaceOptions } from './pipeline.js';
export { FEASIBILITY_CHAIN, STATIC_CHECKS, NOT_READY_CAUSE } from './feasibility.js';
export type { FeasibilityCheck } from './feasibility.js';
export { RejectionTally, NO_AGENTS_REASON } from './rejections.js';
export type { Rejection } from './rejections.js';
export { scoreBinpack, scoreSpread, scorerFor, usedFractionAfter } from './score.js';
export type { Scorer } from './score.js';
export { ClusterLedger, groupKey } from './ledger.js';
export type { AgentSlot } from './ledger.js';
export { createRng } from './rng.js';
export type { Rng } from './rng.js';
export { RESOURCE_EPSILON, zeroResources, dominantShare, allocatableResources, firstShortDimension } from './resources.js';
