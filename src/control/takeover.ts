/**
 * A new leader's first pass. A control host on etcd that wins the election starts from the state
 * alone: nothing of what the old leader knew survives it (an apply it was running, a task it started
 * after its last write, a stop it never recorded), and nothing happened on the agents while no host
 * led that the state has seen. So before anything else the new leader asks every agent what runs,
 * at once, whatever --reconcile-interval says:
 *
 * - the tasks an agent reports that the state does not know are adopted (recorded), the ones it
 *   recorded that the agent no longer has or that ended are recorded so, agents that do not answer
 *   are lost, and a second copy of a task id on another agent (a stray) is stopped;
 * - every executor learns the new epoch from these calls, so the deposed leader is refused by all
 *   of them at once, not only by those the new one happens to call first;
 * - when the host supervises (--reconcile-interval > 0), a supervision pass follows at once (it waits
 *   for the state lock rather than skipping): dead tasks restart per their policy, the tasks no plan
 *   wants any more (an apply cut short) stop, lost agents' tasks move. With --reconcile-interval 0
 *   nothing is restarted or moved behind the operator's back: the state is made true, and the next
 *   apply decides.
 *
 * Job runs are not asked about here: their tasks are the scheduler of runs', which recovers the runs
 * the old leader left claimed or running (src/jobs/watch.ts, recover) on its own first pass.
 */
import { embeddedInventory, loadInventoryFile, resolveInventory } from '../spec/index.js';
import type { InventorySpec } from '../spec/model.js';
import type { StateBackend } from '../state/backend.js';
import { StateWork } from '../state/work.js';
import { AgentPool } from './agents.js';
import { observe, type StrayTask } from './snapshot.js';
import { stopStrays } from './strays.js';
import { stateOf } from './state-handle.js';
import type { Supervisor } from './supervisor.js';
import type { ReconcileResult } from './reconcile.js';

/** TAKEOVER_LOCK_TIMEOUT_MS bounds a takeover's wait for the writers' lock (a request of the new leader may hold it). */
export const TAKEOVER_LOCK_TIMEOUT_MS = 30_000;

/** TakeoverOptions locate the state and the host's own inventory. */
export interface TakeoverOptions {
  stateDir: string;
  /** inventoryPath is the host's inventory (--inventory), asked beside the inventories the plans were applied with. */
  inventoryPath?: string;
  /** supervisor, when it supervises, runs its first pass right after the observation. */
  supervisor?: Supervisor;
  log: (line: string) => void;
  lockTimeoutMs?: number;
}

/** TakeoverResult counts what the observation found, per kind of event it recorded. */
export interface TakeoverResult {
  /** agents asked (each inventory's agents) and how many answered. */
  agents: number;
  reached: number;
  adopted: number;
  /** ended are recorded tasks found ended or gone. */
  ended: number;
  lost: number;
  straysStopped: number;
  straysFailed: number;
  /** unreadable are the inventories that could not be read (their agents were not asked). */
  unreadable: string[];
  reconcile?: ReconcileResult;
  ms: number;
}

/**
 * takeoverInventories are the inventories whose agents a new leader asks: those the plans were
 * applied with (as the supervision pass reads them) and the host's own (an apply cut short before it
 * recorded its plan left tasks only there), each once.
 */
export async function takeoverInventories(state: StateBackend, inventoryPath: string | undefined, log: (line: string) => void): Promise<{ inventories: InventorySpec[]; unreadable: string[] }> {
  const files = new Set(state.view().list('plans').map((p) => p.inventory ?? ''));
  const loads: [string, Promise<InventorySpec>][] = [...files].map((f) => [f || 'the embedded inventory', f ? loadInventoryFile(f) : Promise.resolve(embeddedInventory())]);
  loads.push([inventoryPath ?? 'the host inventory', resolveInventory(inventoryPath)]);
  const inventories = new Map<string, InventorySpec>();
  const unreadable: string[] = [];
  for (const [name, load] of loads) {
    try {
      const inv = await load;
      inventories.set(inv.file, inv);
    } catch (err) {
      unreadable.push(name);
      log(`takeover: cannot read inventory ${name}, its agents are not asked: ${(err as Error).message}`);
    }
  }
  return { inventories: [...inventories.values()], unreadable };
}

/** takeOver is a new leader's first pass: every agent asked what runs, the state made true, strays stopped; then, when supervising, a supervision pass. */
export async function takeOver(o: TakeoverOptions): Promise<TakeoverResult> {
  const t0 = performance.now();
  const state = await stateOf(o.stateDir);
  const { inventories, unreadable } = await takeoverInventories(state, o.inventoryPath, o.log);
  const out: TakeoverResult = { agents: 0, reached: 0, adopted: 0, ended: 0, lost: 0, straysStopped: 0, straysFailed: 0, unreadable, ms: 0 };
  await state.lock({ purpose: 'takeover (new leader)', timeoutMs: o.lockTimeoutMs ?? TAKEOVER_LOCK_TIMEOUT_MS, onWait: (who) => o.log(`takeover: waiting for the state lock held by ${who}`) });
  try {
    for (const inv of inventories) {
      const pool = await AgentPool.connect(inv.agents, { stateDir: state.dir, stateId: state.id, settings: inv.settings });
      try {
        const work = new StateWork(state, 'control-host');
        const now = new Date().toISOString();
        const seen = { strays: [] as StrayTask[] };
        const events = observe(work, inv, pool, now, undefined, seen);
        const stopped = await stopStrays(pool, seen.strays, work, now);
        out.agents += inv.agents.length;
        out.reached += pool.connected.size;
        for (const e of events) {
          if (e.kind === 'task-adopted') out.adopted += 1;
          else if (e.kind === 'task-missing' || /^task-(exited|failed|finished|stopped)$/.test(e.kind)) out.ended += 1;
          else if (e.kind === 'agent-lost') out.lost += 1;
        }
        out.straysStopped += stopped.filter((s) => s.ok).length;
        out.straysFailed += stopped.filter((s) => !s.ok).length;
        await work.flush();
      } finally {
        await pool.close();
      }
    }
    const work = new StateWork(state, 'control-host');
    work.event({ at: new Date().toISOString(), kind: 'leader-takeover', message: takeoverSummary(out) });
    await work.flush();
  } finally {
    await state.unlock();
  }
  if (o.supervisor?.supervising) out.reconcile = await o.supervisor.pass({ lockTimeoutMs: o.lockTimeoutMs ?? TAKEOVER_LOCK_TIMEOUT_MS });
  out.ms = Math.round(performance.now() - t0);
  o.log(`takeover: ${takeoverSummary(out)} in ${out.ms} ms${o.supervisor?.supervising ? '' : '; no supervision pass (--reconcile-interval 0)'}`);
  return out;
}

/** takeoverSummary says what a takeover's observation found, in one line. */
export function takeoverSummary(r: TakeoverResult): string {
  return [
    `asked ${r.agents} agent${r.agents === 1 ? '' : 's'} what runs (${r.reached} answered)`,
    `${r.adopted} task${r.adopted === 1 ? '' : 's'} adopted`,
    `${r.ended} found ended or gone`,
    `${r.lost} agent${r.lost === 1 ? '' : 's'} lost`,
    `${r.straysStopped} stray cop${r.straysStopped === 1 ? 'y' : 'ies'} stopped${r.straysFailed ? ` (${r.straysFailed} could not be)` : ''}`,
    ...(r.unreadable.length ? [`inventories not read: ${r.unreadable.join(', ')}`] : []),
  ].join(', ');
}
