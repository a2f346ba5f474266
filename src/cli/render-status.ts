/**
 * The human rendering of `factory status`: the agents' and tasks' tables, foreign tasks, recent
 * events and the control host. Shared by the status command (src/commands/status.ts) and the CLI's
 * fast path (src/cli/fast-path.ts), so the two print the same bytes; no oclif, ora, zod or yaml here.
 */
import type { StatusResult, StatusTask } from '../control/status.js';
import type { ForeignTask } from '../state/types.js';
import { formatBytes, table } from './render.js';

/** foreignCountText renders an agent's foreign tasks for a table: `2 (st-…: 2)`, '-' when none. */
export function foreignCountText(foreign: ForeignTask[] | undefined): string {
  if (!foreign?.length) return '-';
  const by = new Map<string, number>();
  for (const f of foreign) by.set(f.state || 'unknown state', (by.get(f.state || 'unknown state') ?? 0) + 1);
  return `${foreign.length} (${[...by].map(([s, n]) => `${s}: ${n}`).join(', ')})`;
}

/** StatusView is what renderStatus needs: a status result whose `refreshed` and `events` may be absent. */
export type StatusView = Omit<StatusResult, 'refreshed' | 'events'> & Partial<StatusResult>;

/** renderStatus prints a status result as `factory status` does, for the flags it ran with. */
export function renderStatus(r: StatusView, flags: { cached: boolean; events: number }, now = Date.now()): string {
  // a FOREIGN column (tasks other factory states run there) only when some agent has any
  const foreign = r.agents.some((a) => a.foreign?.length);
  const agentRows = r.agents.map((a) => [
    a.name,
    a.idc,
    a.cluster,
    a.state,
    `cpus ${a.resources.cpus} mem ${formatBytes(a.resources.mem)}${a.resources.gpus ? ` gpus ${a.resources.gpus}` : ''}`,
    a.limits ?? '',
    ...(foreign ? [foreignCountText(a.foreign)] : []),
    // one line in the table: a multi-line error (an agent's stack trace) stays in --json
    firstLine(a.error),
  ]);
  const taskRows = r.tasks.map((t) => [
    t.task,
    t.agent,
    t.driver,
    t.pid !== undefined ? String(t.pid) : '-',
    `${t.crashLoop ? 'crash-loop' : t.health ? `${t.state} (${t.health})` : t.state}${t.power ? ` [${t.power}]` : ''}`,
    t.limits ?? '',
    [t.error !== undefined ? firstLine(t.error) : (t.signal ? `killed by ${t.signal}` : t.exitCode !== undefined && t.state !== 'running' ? `exit ${t.exitCode}` : ''), restartText(t, now)].filter(Boolean).join('; '),
  ]);
  const out = [table(['AGENT', 'IDC', 'CLUSTER', 'STATE', 'RESOURCES', 'LIMITS', ...(foreign ? ['FOREIGN'] : []), 'ERROR'], agentRows), ''];
  out.push(taskRows.length ? table(['TASK', 'AGENT', 'DRIVER', 'PID', 'STATE', 'LIMITS', 'DETAIL'], taskRows) : 'No tasks.');
  if (foreign) {
    const n = r.agents.reduce((sum, a) => sum + (a.foreign?.length ?? 0), 0);
    out.push('', `${n} task${n === 1 ? '' : 's'} of other factory states run${n === 1 ? 's' : ''} on these agents: not this state's (${r.stateId}), never adopted or stopped (status --json lists them).`);
  }
  if (r.events?.length && flags.events > 0) {
    out.push('', 'Recent events:', ...r.events.map((e) => `  ${e.at}  ${e.message}`));
  }
  if (!r.refreshed && !flags.cached && (r.unrefreshed || !r.stale)) out.push('', `(state not refreshed: ${r.unrefreshed ?? 'another factory holds the lock'})`);
  // a store that does not answer (etcd without a quorum): what is shown is the last state this host saw
  if (r.stale) out.push('', `(the state may be stale: ${r.stale.reason}; since ${r.stale.since})`);
  const h = r.controlHost;
  if (h) {
    const every = h.reconcileIntervalMs > 0 ? `supervising the applied plans every ${h.reconcileIntervalMs / 1000} s (${h.reconcilePasses} pass${h.reconcilePasses === 1 ? '' : 'es'})` : 'not supervising';
    out.push('', `Control host: pid ${h.pid} since ${h.startedAt}${h.listen ? `, listening on https://${h.listen}` : ''}, ${every}.`);
  }
  return out.join('\n');
}

/**
 * restartText is a task's restart backoff for the DETAIL column: `3 restarts` for a task up again,
 * `restart 4 at 12:00:08Z (in 8s)` for a crash-looping one ('' for none).
 */
export function restartText(t: Pick<StatusTask, 'restarts' | 'crashLoop' | 'nextRestartAt'>, now: number): string {
  if (!t.restarts) return '';
  if (!t.crashLoop) return `${t.restarts} restart${t.restarts === 1 ? '' : 's'}`;
  if (!t.nextRestartAt) return `${t.restarts} restart${t.restarts === 1 ? '' : 's'}, next at the next pass`;
  const at = Date.parse(t.nextRestartAt);
  const left = Math.ceil((at - now) / 1000);
  const clock = new Date(at).toISOString().slice(11, 19);
  return `restart ${t.restarts + 1} at ${clock}Z (${left > 0 ? `in ${left}s` : 'due'})`;
}

/** firstLine is a text's first line, with `…` when more followed ('' for none). */
export function firstLine(text: string | undefined): string {
  if (!text) return '';
  const i = text.search(/\r?\n/);
  return i < 0 ? text : `${text.slice(0, i)} …`;
}
