/**
 * Offline what-if for local agents: `plan diff --offline` contacts no agent, but an agent that is
 * this very machine and declares no capacity can still be sized by reading this host, in-process.
 */
import type { AgentSpec, InventorySpec } from '../spec/model.js';
import type { Driver, ResourceVector } from '../scheduler/types.js';
import { discover } from '../executors/discovery.js';
import { agentWorkDir } from './agents.js';

/** localCapacities discovers this host's capacity and drivers for each local agent of the inventory, in-process. */
export async function localCapacities(inv: InventorySpec, stateDir: string): Promise<Map<string, { resources: ResourceVector; drivers: Driver[] }>> {
  const out = new Map<string, { resources: ResourceVector; drivers: Driver[] }>();
  const locals: AgentSpec[] = inv.agents.filter((a) => a.transport.kind === 'local');
  for (const a of locals) {
    // the agent's own folder may not exist before the first apply: size the disk of the state dir's file system
    const d = await discover(a.workDir ? agentWorkDir(a, stateDir) : stateDir);
    out.set(a.name, { resources: d.resources, drivers: d.drivers });
  }
  return out;
}
