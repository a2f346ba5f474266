/**
 * Feasibility checkers: each looks at one agent for one group, in a context (the ledger and the
 * projects' policies), and either passes (undefined) or names the cause that excludes the agent. The
 * chain order is fixed, and an agent is counted under the first checker that rejects it, so "why isn't
 * it placed?" is answered from data.
 *
 * Each rule is written once. A checker is either static (it reads only what an equivalence class of
 * agents shares: state, idc, cluster, drivers, attributes — so the pipeline runs it once per class) or
 * dynamic, and then it offers a packed form on the ledger's typed arrays for the hot loop, which must
 * agree with `check` (test/scheduler/checkers.test.ts).
 */
import { matchConstraint } from './constraints-match.js';
import type { AgentSlot, ClusterLedger, GroupDemand } from './ledger.js';
import { groupKey } from './ledger.js';
import type { Rejection } from './rejections.js';
import { RESOURCE_EPSILON, firstShortDimension } from './resources.js';
import type { DesiredGroup, ProjectPolicy } from './types.js';

/** CheckContext is what a checker may read besides the agent and the group. */
export interface CheckContext {
  readonly ledger: ClusterLedger;
  readonly projects: Readonly<Record<string, ProjectPolicy>>;
}

/** PackedCheck is a dynamic checker bound to one group, reading slot indices of the ledger's arrays. */
export interface PackedCheck {
  /** ok says whether one more task of the group passes on slot i (same answer as `check`). */
  ok(i: number): boolean;
  /** room is how many more tasks of the group pass on slot i, at most `cap` (may be ≤ 0 when none). */
  room(i: number, cap: number): number;
}

/** Checker is one feasibility rule. */
export interface Checker {
  /** name identifies the rule in tests and docs. */
  readonly name: string;
  /**
   * static checkers read only what an equivalence class of agents shares (its key in candidates.ts:
   * state, idc, cluster, drivers, attributes) and only the group fields of its signature (driver,
   * project, placement, constraints); the pipeline runs them once per class and signature. A static
   * rule that reads anything else must extend that key or signature.
   */
  readonly static: boolean;
  /** check is the reference form: undefined when the agent passes, else the cause. */
  check(ctx: CheckContext, slot: AgentSlot, group: DesiredGroup): Rejection | undefined;
  /** pack binds the rule to a group on typed arrays; undefined when the rule cannot reject for this group. */
  pack?(ctx: CheckContext, group: DesiredGroup, demand: GroupDemand): PackedCheck | undefined;
  /**
   * packKey names everything `pack` reads from the group: two groups with the same key get the same
   * answers from `ok` and `room` on the same ledger state (level 1 reuses a cluster's count then).
   */
  packKey?(group: DesiredGroup, demand: GroupDemand): string;
}

/** NOT_READY_CAUSE is the cause of agents that are not in state `ready`. */
export const NOT_READY_CAUSE = 'agent not ready';

/** checkAgentReady rejects agents that are lost, down or draining (nothing new is placed on them). */
export const checkAgentReady: Checker = {
  name: 'ready',
  static: true,
  check: (_ctx, slot) => (slot.agent.state === 'ready' ? undefined : { cause: NOT_READY_CAUSE, wording: 'bare' }),
};

/** checkDriver rejects agents whose executor cannot run the group's driver. */
export const checkDriver: Checker = {
  name: 'driver',
  static: true,
  check: (_ctx, slot, group) => (slot.agent.drivers.includes(group.driver) ? undefined : { cause: `driver ${group.driver}`, wording: 'lack' }),
};

/** checkPlacementIdcs rejects agents outside the plan's `placement.idcs`. */
export const checkPlacementIdcs: Checker = {
  name: 'placement.idcs',
  static: true,
  check: (_ctx, slot, group) => {
    const idcs = group.placement?.idcs;
    if (!idcs || idcs.length === 0 || idcs.includes(slot.agent.idc)) return undefined;
    return { cause: `idc not in (${idcs.join(', ')})`, wording: 'agents' };
  },
};

/** checkPlacementCluster rejects agents outside the plan's `placement.cluster`. */
export const checkPlacementCluster: Checker = {
  name: 'placement.cluster',
  static: true,
  check: (_ctx, slot, group) => {
    const cluster = group.placement?.cluster;
    if (cluster === undefined || slot.agent.cluster === cluster) return undefined;
    return { cause: `cluster != ${cluster}`, wording: 'agents' };
  },
};

/** checkConstraints rejects agents whose attributes fail any of the group's constraints (the first failing one is named). */
export const checkConstraints: Checker = {
  name: 'constraints',
  static: true,
  check: (_ctx, slot, group) => {
    for (const c of group.constraints) {
      if (!matchConstraint(c, slot.agent.attributes)) return { cause: `constraint ${c.source}`, wording: 'agents' };
    }
    return undefined;
  },
};

/** checkMaxPerAgent rejects agents that already run `maxPerAgent` tasks of the group. */
export const checkMaxPerAgent: Checker = {
  name: 'maxPerAgent',
  static: false,
  check: (_ctx, slot, group) => {
    const max = group.maxPerAgent;
    if (max === undefined) return undefined;
    return (slot.groupCounts.get(groupKey(group)) ?? 0) < max ? undefined : { cause: `maxPerAgent ${max}`, wording: 'at-limit' };
  },
  pack: (ctx, group) => {
    const max = group.maxPerAgent;
    if (max === undefined) return undefined;
    const key = groupKey(group);
    const slots = ctx.ledger.slots;
    const running = (i: number) => slots[i]?.groupCounts.get(key) ?? 0;
    return { ok: (i) => running(i) < max, room: (i, cap) => Math.min(cap, max - running(i)) };
  },
  packKey: (group) => `${group.maxPerAgent ?? ''}|${groupKey(group)}`,
};

/** checkPorts rejects agents where a static port the group binds is already bound by another task. */
export const checkPorts: Checker = {
  name: 'ports',
  static: false,
  check: (_ctx, slot, group) => {
    for (const port of group.resources.ports) {
      if (slot.ports.has(port)) return { cause: `port ${port}`, wording: 'in-use' };
    }
    return undefined;
  },
  pack: (ctx, group) => {
    const ports = group.resources.ports;
    if (ports.length === 0) return undefined;
    const slots = ctx.ledger.slots;
    const free = (i: number) => {
      const slot = slots[i];
      if (!slot) return false;
      for (const p of ports) if (slot.ports.has(p)) return false;
      return true;
    };
    // A bound port admits one task per agent.
    return { ok: free, room: (i, cap) => (free(i) ? Math.min(cap, 1) : 0) };
  },
  packKey: (group) => group.resources.ports.join(','),
};

/** checkResources rejects agents whose free resources do not cover the group's demand (the first short dimension is named). */
export const checkResources: Checker = {
  name: 'resources',
  static: false,
  check: (_ctx, slot, group) => {
    const dim = firstShortDimension(slot.free, group.resources);
    return dim === undefined ? undefined : { cause: dim, wording: 'short' };
  },
  pack: (ctx, _group, demand) => {
    const { asked, amount } = demand;
    if (asked.length === 0) return undefined;
    const D = ctx.ledger.dims.length;
    const free = ctx.ledger.free;
    return {
      ok: (i) => {
        const row = i * D;
        for (let j = 0; j < asked.length; j++) {
          const k = asked[j] ?? 0;
          if (k < 0 || (amount[k] ?? 0) > (free[row + k] ?? 0) + RESOURCE_EPSILON) return false;
        }
        return true;
      },
      room: (i, cap) => {
        const row = i * D;
        let n = cap;
        for (let j = 0; j < asked.length; j++) {
          const k = asked[j] ?? 0;
          if (k < 0) return 0;
          n = Math.min(n, Math.floor(((free[row + k] ?? 0) + RESOURCE_EPSILON) / (amount[k] ?? 0)));
        }
        return n;
      },
    };
  },
  packKey: (_group, demand) => `${demand.asked.join(',')}|${demand.amount.join(',')}`,
};

/** checkProjectPinning rejects agents outside the clusters the group's project is pinned to (inventory `projects`). */
export const checkProjectPinning: Checker = {
  name: 'project pinning',
  static: true,
  check: (ctx, slot, group) => {
    const pinned = ctx.projects[group.project]?.clusters;
    if (!pinned || pinned.length === 0 || pinned.includes(slot.agent.cluster)) return undefined;
    return { cause: `project ${group.project} pinned to (${pinned.join(', ')})`, wording: 'agents' };
  },
};

/**
 * AGENT_MATCH_CHECKS choose the agents of an everyAgent group (reconcile.ts): driver, placement and
 * constraints; readiness is left to the caller (a draining agent keeps its task) and project pinning to placement.
 */
export const AGENT_MATCH_CHECKS: readonly Checker[] = [checkDriver, checkPlacementIdcs, checkPlacementCluster, checkConstraints];

/** FEASIBILITY_CHAIN is the full filter, in the fixed order rejections are attributed. */
export const FEASIBILITY_CHAIN: readonly Checker[] = [
  checkAgentReady,
  ...AGENT_MATCH_CHECKS,
  checkMaxPerAgent,
  checkPorts,
  checkResources,
  checkProjectPinning,
];

/** firstRejection runs checks in order and returns the first rejection, or undefined if the agent passes all. */
export function firstRejection(checks: readonly Checker[], ctx: CheckContext, slot: AgentSlot, group: DesiredGroup): Rejection | undefined {
  for (const c of checks) {
    const r = c.check(ctx, slot, group);
    if (r) return r;
  }
  return undefined;
}
