/**
 * The scheduler's working view of the cluster: per agent, what is still free, which static ports are
 * bound and how many tasks of each group it runs. Placements reserve here immediately, so later
 * placements never over-commit.
 */
import { addResourcesInto, allocatableResources, copyResources, zeroResources } from './resources.js';
import type { AgentSnapshot, ResourceVector, TaskResources } from './types.js';

/** AgentSlot is one agent plus its running totals during a scheduling pass. */
export interface AgentSlot {
  agent: AgentSnapshot;
  /** allocatable is capacity minus reserved. */
  allocatable: ResourceVector;
  /** free is allocatable minus everything reserved in this pass (may go negative if already over-committed). */
  free: ResourceVector;
  /** ports counts the tasks binding each static port. */
  ports: Map<number, number>;
  /** groupCounts counts tasks per `plan/group` key. */
  groupCounts: Map<string, number>;
}

/** groupKey is the `plan/group` key of a group or task. */
export function groupKey(x: { plan: string; group: string }): string {
  return `${x.plan}/${x.group}`;
}

/** ClusterLedger holds an AgentSlot per agent (sorted by name) and reserves and releases task resources. */
export class ClusterLedger {
  /** slots are the agents sorted by name, for a deterministic scan order. */
  readonly slots: AgentSlot[];
  private readonly byName = new Map<string, AgentSlot>();

  constructor(agents: readonly AgentSnapshot[]) {
    const sorted = [...agents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.slots = [];
    for (const agent of sorted) {
      if (this.byName.has(agent.name)) continue;
      const allocatable = allocatableResources(agent);
      const slot: AgentSlot = { agent, allocatable, free: copyResources(allocatable), ports: new Map(), groupCounts: new Map() };
      this.slots.push(slot);
      this.byName.set(agent.name, slot);
    }
  }

  /** slot returns the slot of a named agent, or undefined if the agent is not in the snapshot. */
  slot(name: string): AgentSlot | undefined {
    return this.byName.get(name);
  }

  /** totalAllocatable sums the allocatable resources of the ready agents (for dominant shares). */
  totalAllocatable(): ResourceVector {
    const total = zeroResources();
    for (const s of this.slots) if (s.agent.state === 'ready') addResourcesInto(total, s.allocatable, 1);
    return total;
  }

  /** reserve charges a task's resources, ports and group count to an agent (no-op for an unknown agent). */
  reserve(agentName: string, key: string, res: TaskResources): void {
    this.apply(agentName, key, res, 1);
  }

  /** release undoes a reserve of the same task. */
  release(agentName: string, key: string, res: TaskResources): void {
    this.apply(agentName, key, res, -1);
  }

  private apply(agentName: string, key: string, res: TaskResources, sign: 1 | -1): void {
    const slot = this.byName.get(agentName);
    if (!slot) return;
    addResourcesInto(slot.free, res, sign === 1 ? -1 : 1);
    for (const port of res.ports) bump(slot.ports, port, sign);
    bump(slot.groupCounts, key, sign);
  }
}

function bump<K>(m: Map<K, number>, k: K, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
