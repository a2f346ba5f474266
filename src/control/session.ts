/**
 * The one way an operation on one task reaches its agent (logs, VM actions, a restart): find the
 * task in the state (an exact id or a unique suffix; another state's task is refused with
 * E_FOREIGN_TASK), resolve the inventory, connect the task's agent with errors that name it, run,
 * and close the connection whatever happens.
 */
import { FactoryError } from '../errors.js';
import { resolveInventory } from '../spec/index.js';
import type { AgentSpec, InventorySpec } from '../spec/model.js';
import type { StateBackend } from '../state/backend.js';
import type { TaskRecord } from '../state/types.js';
import { StateWork } from '../state/work.js';
import { AgentPool, type ConnectedAgent } from './agents.js';
import { refuseForeign } from './snapshot.js';
import { stateOf } from './state-handle.js';
import { findTask } from './find-task.js';

/** TaskAgent is a task's agent, connected for one operation. */
export interface TaskAgent {
  spec: AgentSpec;
  conn: ConnectedAgent;
}

/** connectAgentOf connects the agent a recorded task runs on; the caller closes the returned pool. */
export async function connectAgentOf(
  rec: TaskRecord,
  inventory: InventorySpec,
  state: Pick<StateBackend, 'id'> & { dir: string },
  what = 'task',
): Promise<TaskAgent & { pool: AgentPool }> {
  const spec = inventory.agents.find((a) => a.name === rec.agent);
  if (!spec) throw new FactoryError(`${what} ${rec.task} runs on agent ${rec.agent}, which is not in the inventory ${inventory.file}`, { code: 'E_AGENT_UNKNOWN' });
  const pool = await AgentPool.connect([spec], { stateDir: state.dir, stateId: state.id, settings: inventory.settings });
  const conn = pool.connected.get(spec.name);
  if (!conn) {
    const why = pool.failed.get(spec.name)?.error ?? 'unknown error';
    await pool.close();
    throw new FactoryError(`agent ${spec.name}: unreachable: ${why}`, { code: 'E_AGENT_UNREACHABLE' });
  }
  return { pool, spec, conn };
}

/** TaskSessionOptions name the state, the inventory and the task. */
export interface TaskSessionOptions {
  stateDir: string;
  inventoryPath?: string;
  task: string;
  /** what the task is called in errors (`task`, `VM`). */
  what?: string;
  /** check refuses a task the operation does not apply to (before anything connects). */
  check?: (rec: TaskRecord) => void;
}

/** withAgentOfTask runs fn with the task's record and its agent connected, and always closes it. */
export async function withAgentOfTask<T>(
  opts: TaskSessionOptions,
  fn: (s: TaskAgent & { rec: TaskRecord; state: StateBackend & { dir: string }; inventory: InventorySpec }) => Promise<T>,
): Promise<T> {
  const inventory = await resolveInventory(opts.inventoryPath);
  const state = await stateOf(opts.stateDir);
  const view = new StateWork(state);
  refuseForeign(view, opts.task);
  const rec = findTask(view.tasks.values(), opts.task);
  opts.check?.(rec);
  const { pool, spec, conn } = await connectAgentOf(rec, inventory, state, opts.what);
  try {
    return await fn({ rec, state, inventory, spec, conn });
  } finally {
    await pool.close();
  }
}
