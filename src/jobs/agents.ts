/**
 * JobAgents gives the scheduler of runs what it needs of the agents: the placement view of a plan's
 * inventory (agents and what runs on them, from the state) and an executor session per agent
 * (borrowed from the control host's warm sessions when it keeps them).
 */
import { AgentPool } from '../control/agents.js';
import { snapshotOf } from '../control/snapshot.js';
import { AgentError } from '../errors.js';
import type { TaskRunSpec, TaskStatus } from '../protocol/messages.js';
import type { ActualTask, AgentSnapshot, ProjectPolicy } from '../scheduler/types.js';
import { embeddedInventory, loadInventoryFile } from '../spec/inventory.js';
import type { AgentSpec, InventorySpec } from '../spec/model.js';
import type { StateBackend } from '../state/backend.js';
import { StateWork } from '../state/work.js';

/** RunExecutor is the part of an executor session the scheduler of runs uses. */
export interface RunExecutor {
  run(spec: TaskRunSpec, timeoutMs?: number): Promise<TaskStatus>;
  stop(task: string, opts?: { graceMs?: number; remove?: boolean; timeoutMs?: number }): Promise<TaskStatus>;
  inspect(timeoutMs?: number): Promise<TaskStatus[]>;
  /** clockOffsetMs is the agent's clock minus the host's (measured at hello; absent: 0). */
  readonly clockOffsetMs?: number;
}

/** PlacementView is what placing a run needs: the agents of the plan's inventory, what runs, the tenants. */
export interface PlacementView {
  agents: AgentSnapshot[];
  actual: ActualTask[];
  projects?: Record<string, ProjectPolicy>;
  /** placement is the plan's own restriction (idcs, cluster), which its jobs' runs keep too. */
  placement?: { idcs?: string[]; cluster?: string };
}

/** RunAgents is how the scheduler of runs reaches agents (a fake in unit tests, JobAgents for real). */
export interface RunAgents {
  /** view is the placement view for runs of a plan. */
  view(plan: string): Promise<PlacementView>;
  /** executor returns a session on an agent of the plan's inventory; it throws an AgentError naming the agent. */
  executor(plan: string, agent: string): Promise<RunExecutor>;
  close(): Promise<void>;
}

/** JobAgents is RunAgents over the state and real executor sessions. */
export class JobAgents implements RunAgents {
  private readonly inventories = new Map<string, { at: number; inv: Promise<InventorySpec> }>();
  private readonly sessions = new Map<string, { client: RunExecutor & { closed: boolean }; close?: () => Promise<void> }>();
  private closed = false;

  constructor(
    private readonly state: StateBackend & { dir: string },
    /** inventoryTtlMs is how long an inventory file read is reused. */
    private readonly inventoryTtlMs = 5000,
  ) {}

  private inventoryOf(plan: string): Promise<InventorySpec> {
    const rec = this.state.view().get('plans', plan);
    const file = rec?.inventory ?? '';
    const held = this.inventories.get(file);
    if (held && Date.now() - held.at < this.inventoryTtlMs) return held.inv;
    const inv = file ? loadInventoryFile(file) : Promise.resolve(embeddedInventory());
    this.inventories.set(file, { at: Date.now(), inv });
    inv.catch(() => this.inventories.delete(file));
    return inv;
  }

  async view(plan: string): Promise<PlacementView> {
    const inv = await this.inventoryOf(plan);
    const { agents, actual } = snapshotOf(inv, new StateWork(this.state), { offline: false });
    const placement = this.state.view().get('plans', plan)?.spec?.placement;
    return { agents, actual, projects: inv.projects, ...(placement ? { placement } : {}) };
  }

  async executor(plan: string, agent: string): Promise<RunExecutor> {
    // after close (the host stops), a run stopped or removed in the background must not open a
    // session: its executor child would be closed by nobody, and keep the host from exiting
    if (this.closed) throw new AgentError(agent, 'the control host is stopping: no new session', { code: 'E_AGENT_CLOSED' });
    const held = this.sessions.get(agent);
    if (held && !held.client.closed) return held.client;
    const inv = await this.inventoryOf(plan);
    const spec: AgentSpec | undefined = inv.agents.find((a) => a.name === agent);
    if (!spec) throw new AgentError(agent, `not in the inventory of plan '${plan}' any more`, { code: 'E_AGENT_UNKNOWN' });
    const pool = await AgentPool.connect([spec], { stateDir: this.state.dir, stateId: this.state.id, settings: inv.settings });
    const conn = pool.connected.get(agent);
    if (!conn) {
      await pool.close();
      throw new AgentError(agent, pool.failed.get(agent)?.error ?? 'unreachable', { code: 'E_AGENT_UNREACHABLE' });
    }
    // a pool lent by the control host's warm sessions leaves them open on close; our own ends with close()
    const warm = Boolean(AgentPool.warm);
    if (warm) await pool.close();
    this.sessions.set(agent, { client: conn.client, close: warm ? undefined : () => pool.close() });
    return conn.client;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close?.().catch(() => undefined)));
  }
}
