/**
 * status and logs: what runs where, read from the agents themselves (the state file is refreshed
 * with what they report), and a task's output streamed from its agent.
 */
import fs from 'node:fs';
import { resolveInventory } from '../spec/index.js';
import type { AgentSpec } from '../spec/model.js';
import { StateWork } from '../state/work.js';
import { stateOf } from './state-handle.js';
import type { StateStaleness } from '../state/backend.js';
import type { AgentRecord, EventRecord, ForeignTask, TaskRecord } from '../state/types.js';
import { AgentPool } from './agents.js';
import { controlSocketPath } from './host-protocol.js';
import { health, type HostHealth } from './host-health.js';
import { compareTaskIds } from './task-order.js';
import { effectiveResources, observe, type StrayTask } from './snapshot.js';
import { stopStrays } from './strays.js';
import { withAgentOfTask } from './session.js';
import { backoffView, type BackoffView } from './crash-loop.js';

/** StatusAgent is one agent in `status --json`. */
export interface StatusAgent {
  name: string;
  idc: string;
  cluster: string;
  state: string;
  resources: AgentRecord['resources'];
  /** declared is what the inventory says (wins over discovery); discovered is what the executor found. */
  declared?: AgentSpec['resources'];
  discovered?: AgentRecord['discovered'];
  attributes: Record<string, string>;
  drivers: string[];
  limits?: string;
  lastSeen?: string;
  error?: string;
  /** foreign are the tasks another factory state runs on this agent (listed, never adopted or stopped). */
  foreign?: ForeignTask[];
}

/** StatusTask is one task in `status --json`; its restart backoff's fields (restarts, crashLoop, nextRestartAt, backoffMs) are crash-loop.ts's BackoffView. */
export interface StatusTask extends BackoffView {
  task: string;
  group: string;
  plan: string;
  project: string;
  agent: string;
  driver: string;
  state: string;
  pid?: number;
  exitCode?: number;
  signal?: string;
  limits?: string;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  /** power is a VM task's power state: running, shut off, paused, crashed or imaging. */
  power?: string;
  /** health is set for tasks with a health check: starting, healthy or unhealthy. */
  health?: string;
  /** image is a container task's image. */
  image?: string;
}

/** StatusResult is the `status --json` document. */
export interface StatusResult {
  agents: StatusAgent[];
  tasks: StatusTask[];
  events: EventRecord[];
  /** refreshed is false when the agents were not asked (--cached) or the state could not be saved. */
  refreshed: boolean;
  /** controlHost is the control host serving this state (`factory control serve`), when one answers on its socket. */
  controlHost?: HostHealth;
  /** stateId is this state's id: the tasks it starts carry it, other states see them as foreign. */
  stateId?: string;
  /** unrefreshed says why the agents' answers were not recorded, when it is not another writer's lock (a follower on etcd). */
  unrefreshed?: string;
  /** stale is set when the store did not answer (etcd without a quorum, or out of reach): the records are the last ones seen. */
  stale?: StateStaleness;
}

/** StatusOptions select the state, the inventory and whether to ask the agents. */
export interface StatusOptions {
  stateDir: string;
  inventoryPath?: string;
  cached?: boolean;
  events?: number;
  /** by is who asks (recorded on the events the observation publishes). */
  by?: string;
  /**
   * readOnly says why this process must not write the state nor act on agents (a follower control
   * host on etcd: only the leader does): the agents are asked, nothing is recorded, no stray is stopped.
   */
  readOnly?: string;
}

function taskView(t: TaskRecord): StatusTask {
  return {
    task: t.task, group: t.group, plan: t.plan, project: t.project, agent: t.agent, driver: t.driver, state: t.state,
    pid: t.state === 'running' ? t.pid : undefined, exitCode: t.exitCode, signal: t.signal, limits: t.limits, error: t.error,
    startedAt: t.startedAt, finishedAt: t.finishedAt,
    ...(t.power ? { power: t.power } : {}),
    ...(t.health ? { health: t.health } : {}),
    ...(t.image ? { image: t.image } : {}),
    ...backoffView(t),
  };
}

/** agentsToAsk is the agents status asks: the inventory's (tasks on agents no longer in it are shown as recorded). */
function agentsToAsk(invAgents: AgentSpec[]): AgentSpec[] {
  return invAgents;
}

// foreignCountText moved to the CLI's rendering (the fast path bundles it without this module)
export { foreignCountText } from '../cli/render-status.js';

/** status asks every agent what runs, records it, and returns agents and tasks. */
export async function status(opts: StatusOptions): Promise<StatusResult> {
  const inventory = await resolveInventory(opts.inventoryPath);
  const state = await stateOf(opts.stateDir);
  let refreshed = false;
  let work = new StateWork(state, opts.by);
  if (!opts.cached) {
    const pool = await AgentPool.connect(agentsToAsk(inventory.agents), { stateDir: state.dir, stateId: state.id, settings: inventory.settings });
    try {
      let locked = false;
      try {
        if (!opts.readOnly) {
          await state.lock({ timeoutMs: 2_000, purpose: 'status', onWait: () => undefined });
          locked = true;
        }
      } catch {
        // an apply is running: show what the agents say without writing it
      }
      try {
        const seen = { strays: [] as StrayTask[] };
        observe(work, inventory, pool, new Date().toISOString(), undefined, seen);
        if (locked) {
          // reconnect reconciliation: a task id runs once; stray copies on returning agents are stopped
          await stopStrays(pool, seen.strays, work, new Date().toISOString());
          await work.flush();
          work = new StateWork(state, opts.by);
          refreshed = true;
        }
      } finally {
        if (locked) await state.unlock();
      }
    } finally {
      await pool.close();
    }
  }
  const agents: StatusAgent[] = inventory.agents.map((spec) => {
    const rec = work.agents.get(spec.name);
    return {
      name: spec.name,
      idc: spec.idc,
      cluster: spec.cluster,
      state: rec ? (rec.draining && rec.state === 'ready' ? 'draining' : rec.state) : 'unknown',
      resources: rec?.resources ?? effectiveResources(spec.resources),
      declared: spec.resources,
      discovered: rec?.discovered,
      attributes: { ...(rec?.attributes ?? {}), ...spec.attributes },
      drivers: rec?.drivers ?? spec.drivers ?? [],
      limits: rec?.limits,
      lastSeen: rec?.lastSeen,
      error: rec?.error,
      ...(rec?.foreign?.length ? { foreign: rec.foreign } : {}),
    };
  });
  for (const rec of work.agents.values()) {
    if (!inventory.agents.some((a) => a.name === rec.name)) {
      agents.push({ ...rec, state: `${rec.state} (not in inventory)` });
    }
  }
  const tasks = work.tasks.values().map(taskView).sort((a, b) => compareTaskIds(a.task, b.task));
  const n = opts.events ?? 20;
  const events = n > 0 ? state.eventsSince(0).events.slice(-n) : [];
  const controlHost = await controlHostOf(state.dir);
  const stale = state.staleness?.();
  return { agents, tasks, events, refreshed, ...(controlHost ? { controlHost } : {}), stateId: state.id, ...(opts.readOnly && !opts.cached ? { unrefreshed: opts.readOnly } : {}), ...(stale ? { stale } : {}) };
}

/** controlHostOf asks the control host of a state directory who it is; undefined when none answers (a socket left by a dead host included). */
export async function controlHostOf(stateDir: string): Promise<HostHealth | undefined> {
  const socket = controlSocketPath(stateDir);
  try {
    const st = fs.statSync(socket);
    if (!st.isSocket() || st.uid !== process.getuid?.()) return undefined; // only a host of our own user
  } catch {
    return undefined;
  }
  return health(socket, 1000).catch(() => undefined);
}

/** LogsOptions select the task, the streams and whether to follow. */
export interface LogsOptions {
  stateDir: string;
  inventoryPath?: string;
  task: string;
  follow: boolean;
  tail?: number;
  stream: 'stdout' | 'stderr' | 'both';
  onData: (stream: 'stdout' | 'stderr', chunk: string) => void;
  signal?: AbortSignal;
}

export { findTask } from './find-task.js';

/** logs streams a task's output from its agent; with follow it runs until the signal aborts. */
export async function logs(opts: LogsOptions): Promise<void> {
  await withAgentOfTask(opts, ({ rec, conn }) => conn.client.logs(rec.task, { stream: opts.stream, follow: opts.follow, tail: opts.tail }, opts.onData, opts.signal));
}
