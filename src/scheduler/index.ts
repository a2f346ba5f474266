/**
 * The scheduler: a pure function from a cluster snapshot, the desired state of some plans and a seed
 * to a plan of creates, stops and keeps, with reasons for everything it could not place.
 */
export type * from './types.js';
export { schedule, orderRequests } from './schedule.js';
export { matchConstraint, compareAttributeValues } from './constraints-match.js';
export { reconcile, taskId, parseTaskIndex, isLive } from './reconcile.js';
export type { PlacementRequest, Reconciliation } from './reconcile.js';
export { PlacementPipeline } from './pipeline.js';
export type { PlaceOutcome, PlaceFailure } from './pipeline.js';
export { FEASIBILITY_CHAIN, AGENT_MATCH_CHECKS, NOT_READY_CAUSE, firstRejection } from './feasibility.js';
export type { Checker, CheckContext, PackedCheck } from './feasibility.js';
export { RejectionTally, NO_AGENTS_REASON } from './rejections.js';
export type { Rejection } from './rejections.js';
export { scoreBinpack, scoreSpread, scorerFor, selectBest, usedFractionAfter } from './score.js';
export type { Scorer, PackedScore } from './score.js';
export { ClusterLedger, groupKey } from './ledger.js';
export type { AgentSlot } from './ledger.js';
export { createRng } from './rng.js';
export type { Rng } from './rng.js';
export { RESOURCE_EPSILON, zeroResources, dominantShare, allocatableResources, firstShortDimension } from './resources.js';
