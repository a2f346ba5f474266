/**
 * Feasibility checkers: each looks at one agent for one group and either passes (undefined) or names
 * the cause that excludes the agent. The chain order is fixed, and an agent is counted under the first
 * checker that rejects it, so "why isn't it placed?" is answered from data.
 */
import { matchConstraint } from './constraints-match.js';
import type { AgentSlot } from './ledger.js';
import { groupKey } from './ledger.js';
import type { Rejection } from './rejections.js';
import { firstShortDimension } from './resources.js';
import type { DesiredGroup } from './types.js';

/** FeasibilityCheck passes an agent (undefined) or rejects it with a cause. */
export type FeasibilityCheck = (slot: AgentSlot, group: DesiredGroup) => Rejection | undefined;

/** NOT_READY_CAUSE is the cause of agents that are not in state `ready`. */
export const NOT_READY_CAUSE = 'agent not ready';

/** checkAgentReady rejects agents that are lost, down or draining (nothing new is placed on them). */
export const checkAgentReady: FeasibilityCheck = (slot) =>
  slot.agent.state === 'ready' ? undefined : { cause: NOT_READY_CAUSE, wording: 'bare' };

/** checkDriver rejects agents whose executor cannot run the group's driver. */
export const checkDriver: FeasibilityCheck = (slot, group) =>
  slot.agent.drivers.includes(group.driver) ? undefined : { cause: `driver ${group.driver}`, wording: 'lack' };

/** checkPlacementIdcs rejects agents outside the plan's `placement.idcs`. */
export const checkPlacementIdcs: FeasibilityCheck = (slot, group) => {
  const idcs = group.placement?.idcs;
  if (!idcs || idcs.length === 0 || idcs.includes(slot.agent.idc)) return undefined;
  return { cause: `idc not in (${idcs.join(', ')})`, wording: 'agents' };
};

/** checkPlacementCluster rejects agents outside the plan's `placement.cluster`. */
export const checkPlacementCluster: FeasibilityCheck = (slot, group) => {
  const cluster = group.placement?.cluster;
  if (cluster === undefined || slot.agent.cluster === cluster) return undefined;
  return { cause: `cluster != ${cluster}`, wording: 'agents' };
};

/** checkConstraints rejects agents whose attributes fail any of the group's constraints (the first failing one is named). */
export const checkConstraints: FeasibilityCheck = (slot, group) => {
  for (const c of group.constraints) {
    if (!matchConstraint(c, slot.agent.attributes)) return { cause: `constraint ${c.source}`, wording: 'agents' };
  }
  return undefined;
};

/** checkMaxPerAgent rejects agents that already run `maxPerAgent` tasks of the group. */
export const checkMaxPerAgent: FeasibilityCheck = (slot, group) => {
  const max = group.maxPerAgent;
  if (max === undefined) return undefined;
  return (slot.groupCounts.get(groupKey(group)) ?? 0) < max ? undefined : { cause: `maxPerAgent ${max}`, wording: 'at-limit' };
};

/** checkPorts rejects agents where a static port the group binds is already bound by another task. */
export const checkPorts: FeasibilityCheck = (slot, group) => {
  for (const port of group.resources.ports) {
    if (slot.ports.has(port)) return { cause: `port ${port}`, wording: 'in-use' };
  }
  return undefined;
};

/** checkResources rejects agents whose free resources do not cover the group's demand (the first short dimension is named). */
export const checkResources: FeasibilityCheck = (slot, group) => {
  const dim = firstShortDimension(slot.free, group.resources);
  return dim === undefined ? undefined : { cause: dim, wording: 'short' };
};

/** STATIC_CHECKS are the checks that do not depend on what runs on the agent (everyAgent keeps re-evaluate them). */
export const STATIC_CHECKS: readonly FeasibilityCheck[] = [checkDriver, checkPlacementIdcs, checkPlacementCluster, checkConstraints];

/** FEASIBILITY_CHAIN is the full filter, in the fixed order rejections are attributed. */
export const FEASIBILITY_CHAIN: readonly FeasibilityCheck[] = [
  checkAgentReady,
  ...STATIC_CHECKS,
  checkMaxPerAgent,
  checkPorts,
  checkResources,
];

/** firstRejection runs checks in order and returns the first rejection, or undefined if the agent passes all. */
export function firstRejection(checks: readonly FeasibilityCheck[], slot: AgentSlot, group: DesiredGroup): Rejection | undefined {
  for (const check of checks) {
    const r = check(slot, group);
    if (r) return r;
  }
  return undefined;
}
