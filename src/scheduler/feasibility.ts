/**
 * Feasibility checkers: each looks at one agent for one group and either passes (undefined) or names
 * the cause that excludes the agent. The chain order is fixed, and an agent is counted under the first
 * checker that rejects it, so "why isn't it placed?" is answered from data.
 */
import { matchConstraint } from './constraints-match.js';
import type { AgentSlot } from './ledger.js';
import { groupKey } from './ledger.js';
import { firstShortDimension } from './resources.js';
import type { DesiredGroup } from './types.js';

/** RejectionWording is how a cause reads in an unplaced reason: `mem: 7 agents short`, `driver docker: 2 agents lack it`. */
export type RejectionWording = 'bare' | 'agents' | 'short' | 'lack' | 'in-use' | 'at-limit';

/** Rejection names why one checker excluded an agent. */
export interface Rejection {
  /** cause is the key counted in Unplaced.causes, e.g. `mem` or `constraint rack != r9`. */
  cause: string;
  wording: RejectionWording;
}

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

/** RejectionTally counts rejected agents per cause, remembering the first-seen order. */
export class RejectionTally {
  private readonly counts = new Map<string, { n: number; wording: RejectionWording; order: number }>();

  /** add counts one agent under a rejection's cause. */
  add(r: Rejection): void {
    const entry = this.counts.get(r.cause);
    if (entry) entry.n += 1;
    else this.counts.set(r.cause, { n: 1, wording: r.wording, order: this.counts.size });
  }

  /** causes returns cause → number of agents. */
  causes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [cause, { n }] of this.counts) out[cause] = n;
    return out;
  }

  /** parts renders each cause with its count, most common first: `mem: 7 agents short`. */
  parts(): string[] {
    return [...this.counts.entries()]
      .sort(([, a], [, b]) => b.n - a.n || a.order - b.order)
      .map(([cause, { n, wording }]) => `${cause}: ${wordCount(n, wording)}`);
  }

  /** describe renders the tally as one sentence, most common cause first: `no agent fits: mem: 7 agents short; …`. */
  describe(): string {
    const parts = this.parts();
    return parts.length === 0 ? 'no agent fits' : `no agent fits: ${parts.join('; ')}`;
  }
}

function wordCount(n: number, wording: RejectionWording): string {
  const agents = `${n} ${n === 1 ? 'agent' : 'agents'}`;
  switch (wording) {
    case 'bare':
      return `${n}`;
    case 'agents':
      return agents;
    case 'short':
      return `${agents} short`;
    case 'lack':
      return `${agents} ${n === 1 ? 'lacks' : 'lack'} it`;
    case 'in-use':
      return `${agents} ${n === 1 ? 'has' : 'have'} it in use`;
    case 'at-limit':
      return `${agents} at limit`;
  }
}

/** NO_AGENTS_REASON is the unplaced reason when the inventory has no agents at all. */
export const NO_AGENTS_REASON = 'no agents in the inventory';
