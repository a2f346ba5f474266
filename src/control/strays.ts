/**
 * Stray copies: when an agent comes back after its tasks were rescheduled elsewhere, it still runs
 * the old copies. observe() keeps one copy of each task id; this stops the others on their agents,
 * so a task never runs twice. Each stop is bounded in time and reported per agent.
 */
import pLimit from 'p-limit';
import type { StateWork, WorkEvent } from '../state/work.js';
import type { AgentPool } from './agents.js';
import type { StrayTask } from './snapshot.js';

/** StrayStop is the outcome of stopping one stray copy. */
export interface StrayStop {
  task: string;
  agent: string;
  keptOn: string;
  ok: boolean;
  error?: string;
}

/** stopStrays stops every stray copy (SIGTERM, then SIGKILL after the task's grace) and records events. */
export async function stopStrays(pool: AgentPool, strays: StrayTask[], work: StateWork, now: string): Promise<StrayStop[]> {
  const limit = pLimit(16);
  const events: WorkEvent[] = [];
  const results = await Promise.all(
    strays.map((s) =>
      limit(async (): Promise<StrayStop> => {
        const conn = pool.connected.get(s.agent);
        if (!conn) return { task: s.task, agent: s.agent, keptOn: s.keptOn, ok: false, error: `agent ${s.agent} is not connected` };
        try {
          await conn.client.stop(s.task, { remove: true });
          events.push({ at: now, kind: 'task-duplicate-stopped', task: s.task, agent: s.agent, message: `stopped the stray copy of ${s.task} on ${s.agent} (it runs on ${s.keptOn})` });
          return { task: s.task, agent: s.agent, keptOn: s.keptOn, ok: true };
        } catch (err) {
          const error = String((err as Error)?.message ?? err);
          events.push({ at: now, kind: 'task-duplicate-stop-failed', task: s.task, agent: s.agent, message: `cannot stop the stray copy of ${s.task} on ${s.agent}: ${error}` });
          return { task: s.task, agent: s.agent, keptOn: s.keptOn, ok: false, error };
        }
      }),
    ),
  );
  for (const e of events) work.event(e);
  return results;
}
