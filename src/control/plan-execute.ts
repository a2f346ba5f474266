/**
 * Carrying out a schedule: every stop, then every start, many agents at once and several calls on
 * each, every outcome recorded in the state (written at most every SAVE_INTERVAL_MS meanwhile).
 */
import pLimit from 'p-limit';
import type { Placement, Stop } from '../scheduler/types.js';
import type { TaskStatus } from '../protocol/messages.js';
import type { ConnectedAgent } from './agents.js';
import { GroupIndex, runSpecOf } from './desired.js';
import { recordTaskStatus } from './snapshot.js';
import type { Prepared, PlanOptions } from './plan-prepare.js';
import type { OpResult } from './plan-view.js';
import { compareTaskIds } from './task-order.js';
import { noteRestart } from './restart-backoff.js';
import type { RestartBackoffRecord } from '../state/types.js';

type Op = { kind: 'stop'; stop: Stop } | { kind: 'start'; placement: Placement };

/** AGENT_FANOUT bounds how many agents apply works on at once. */
export const AGENT_FANOUT = 16;
/** PER_AGENT_CALLS bounds the executor calls in flight on one agent. */
export const PER_AGENT_CALLS = 8;
/** SAVE_INTERVAL_MS is the least time between two state writes while an apply's calls complete. */
export const SAVE_INTERVAL_MS = 250;

/** execute runs a prepared plan's stops, then its starts, and returns every call's outcome (stops first, each in task order). */
export async function execute(p: Prepared, opts: PlanOptions): Promise<OpResult[]> {
  const byAgent = new Map<string, Op[]>();
  const push = (agent: string, op: Op) => {
    const list = byAgent.get(agent) ?? [];
    list.push(op);
    byAgent.set(agent, list);
  };
  for (const s of p.plan.stop) push(s.task.agent, { kind: 'stop', stop: s });
  for (const c of p.plan.create) push(c.agent, { kind: 'start', placement: c });
  const index = new GroupIndex(p.plans);
  // the restart backoff of each dead task restarted (read before the stops: a moved task's old record goes with them)
  const backoffs = new Map<string, RestartBackoffRecord>();
  for (const c of p.plan.create) {
    const b = c.reason === 'restart' || c.reason === 'reschedule' ? p.work.tasks.get(c.task)?.backoff : undefined;
    if (b?.nextAt !== undefined) backoffs.set(c.task, b);
  }
  const results: OpResult[] = [];
  // Stops run before starts everywhere, so capacity freed on one agent is free before anything lands.
  // Within a phase, up to AGENT_FANOUT agents are worked on at once and up to PER_AGENT_CALLS calls are
  // in flight on each (the executor serves requests concurrently; each task has its own folder).
  // The state is written at most every SAVE_INTERVAL_MS while calls complete and once at the end by
  // the caller: rewriting the whole document after every call made large applies quadratic, and a
  // crash in between loses nothing that the next run's observation of the agents does not recover.
  const phase = async (kind: Op['kind']) => {
    const agents = pLimit(AGENT_FANOUT);
    await Promise.all(
      [...byAgent.entries()].map(([agent, ops]) =>
        agents(async () => {
          const calls = pLimit(PER_AGENT_CALLS);
          await Promise.all(
            ops
              .filter((op) => op.kind === kind)
              .map((op) =>
                calls(async () => {
                  const r = await runOp(p, agent, op, index, backoffs);
                  results.push(r);
                  opts.progress?.(describe(r));
                  await p.work.flushThrottled(SAVE_INTERVAL_MS);
                }),
              ),
          );
        }),
      ),
    );
  };
  await phase('stop');
  await phase('start');
  return results.sort((a, b) => (a.action === b.action ? compareTaskIds(a.task, b.task) : a.action === 'stop' ? -1 : 1));
}

function describe(r: OpResult): string {
  const verb = r.action === 'stop' ? 'stopped' : 'started';
  if (!r.ok) return `${r.task} on ${r.agent}: ${r.action} failed: ${r.error}`;
  if (r.state === 'deferred') return `${r.task} on ${r.agent}: stop deferred: ${r.error}`;
  return `${r.task} on ${r.agent}: ${verb}${r.pid ? ` (pid ${r.pid})` : ''}${r.state && r.state !== 'running' && r.action === 'start' ? ` — ${r.state}` : ''}`;
}

async function runOp(p: Prepared, agent: string, op: Op, index: GroupIndex, backoffs: ReadonlyMap<string, RestartBackoffRecord>): Promise<OpResult> {
  const work = p.work;
  const now = new Date().toISOString();
  const conn: ConnectedAgent | undefined = p.pool?.connected.get(agent);
  const task = op.kind === 'stop' ? op.stop.task.task : op.placement.task;
  if (!conn) {
    const why = p.pool?.failed.get(agent)?.error ?? 'not connected';
    // the old copy of a task moved off a lost agent is stopped when that agent is back (observe → stopStrays)
    if (op.kind === 'stop' && op.stop.reason === 'reschedule') {
      return { task, agent, action: 'stop', ok: true, state: 'deferred', error: `agent ${agent} unreachable (${why}): the old copy is stopped when it is back` };
    }
    return { task, agent, action: op.kind, ok: false, error: `agent ${agent} unreachable: ${why}` };
  }
  if (op.kind === 'stop') {
    try {
      // the group's grace bounds the call's timeout too (a VM's ACPI shutdown may take a while)
      const grace = index.get(op.stop.task.plan, op.stop.task.group)?.group.stopGraceMs;
      await conn.client.stop(task, { remove: true, ...(grace !== undefined ? { graceMs: grace } : {}) });
      const rec = work.tasks.get(task);
      // a rescheduled or updated task may already have a new record on another agent: only drop ours
      if (rec && rec.agent === agent) work.tasks.delete(task);
      work.event({ at: now, kind: 'task-stopped', task, agent, message: `stopped ${task} on ${agent} (${op.stop.reason})` });
      return { task, agent, action: 'stop', ok: true, state: 'stopped' };
    } catch (err) {
      return { task, agent, action: 'stop', ok: false, error: messageOf(err) };
    }
  }
  const pl = op.placement;
  const found = index.get(pl.plan, pl.group);
  if (!found) return { task, agent, action: 'start', ok: false, error: `no group ${pl.plan}/${pl.group}` };
  const spec = runSpecOf(pl, found.plan, found.group);
  // a restart after a death the backoff noted counts one more restart of the task's loop; in a loop
  // (restarted before) it adds no event: the task-crash-loop event of its death said when it would be
  const backoff = backoffs.get(task);
  const counted = () => {
    const rec = work.tasks.get(task);
    if (backoff && rec) work.tasks.put({ ...rec, backoff: noteRestart(backoff, now) });
  };
  const crashLoop = backoff !== undefined && backoff.restarts >= 1;
  let status: TaskStatus;
  try {
    status = await conn.client.run(spec);
  } catch (err) {
    // we do not know whether it started: record it as unknown; the next apply asks the agent
    work.tasks.put({
      task, plan: pl.plan, group: pl.group, project: pl.project, agent, driver: pl.driver, specHash: pl.specHash,
      state: 'unknown', resources: pl.resources, error: messageOf(err), updatedAt: now,
    });
    counted();
    return { task, agent, action: 'start', ok: false, error: messageOf(err), ...(crashLoop ? { crashLoop } : {}) };
  }
  recordTaskStatus(work, agent, { ...status, resources: status.resources ?? pl.resources }, now);
  const rec = work.tasks.get(task);
  if (rec && rec.resources !== pl.resources) work.tasks.put({ ...rec, resources: pl.resources });
  counted();
  const ok = status.state === 'running' || status.state === 'finished';
  if (crashLoop) return { task, agent, action: 'start', ok, state: status.state, pid: status.pid, error: ok ? undefined : status.error ?? `task ${status.state}`, crashLoop };
  work.event({
    at: now,
    kind: ok ? (pl.reason === 'restart' ? 'task-restarted' : pl.reason === 'reschedule' ? 'task-moved' : 'task-started') : 'task-failed',
    task,
    agent,
    message: ok ? `${pl.reason === 'restart' ? 'restarted' : pl.reason === 'reschedule' ? 'moved' : 'started'} ${task} ${pl.reason === 'reschedule' ? 'to' : 'on'} ${agent}` : `${task} failed to start on ${agent}: ${status.error ?? status.state}`,
  });
  return { task, agent, action: 'start', ok, state: status.state, pid: status.pid, error: ok ? undefined : status.error ?? `task ${status.state}` };
}

function messageOf(err: unknown): string {
  return String((err as Error)?.message ?? err);
}
