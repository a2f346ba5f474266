/**
 * The checker of the HA trial in the style of Jepsen's (issue 13, test 5; test/e2e/ha-check.test.ts):
 * a history of client operations on plans, each with its start, its end and what the client knows of
 * its outcome, compared after the faults with the final state and with the processes that run.
 *
 * Each plan is one register. `plan apply` of a plan whose one process group asks `count` copies
 * writes `count`; `plan destroy` writes 0; before any write the register is 0 (no plan, no task). The
 * value the cluster holds is read from the state: the plan's tasks, which must be exactly
 * `<plan>/<group>/0` … `/<count - 1>`, all running (anything else, a task left over or one not
 * running, is a value no operation wrote).
 *
 * Outcomes, as the client saw them:
 * - ok: exit 0, the write was acknowledged;
 * - failed: an error that says nothing was written (E_NOT_APPLIED_CODES): the write never took effect;
 * - unknown: anything else (a timeout, a connection cut, an error whose commit may have landed, an
 *   answer that says part of it failed): it may or may not have taken effect, at any moment from its
 *   start on, even after the client stopped waiting (its end is taken as never).
 *
 * The check on the final value (finalCandidates) is linearizability for a register that is only
 * written and then read once when everything is quiet: the final value must be that of the write
 * that comes last in some order of the writes that took effect which respects real time (a write
 * that ended before another started comes first). A write w (ok or unknown) can be that last one
 * exactly when no acknowledged write started after w ended: an acknowledged write must be in the
 * order, and one that started after w ended must come after it; unknown writes may be left out or
 * put before w, failed ones never took effect. The initial 0 is possible only while no write was
 * acknowledged. So an acknowledged write is lost when the final value is none of these.
 *
 * The process checks (checkProcesses) compare the running tasks of the state with the processes
 * found in /proc by their marker: no task id with two processes, no marked process that is not a
 * running task of the state with that pid, no running task without its process. twiceOf also
 * serves a sampler of the processes during the trial: no task id with two processes at any moment.
 */

/** E_NOT_APPLIED_CODES are the client errors after which the write surely did not take effect. */
export const E_NOT_APPLIED_CODES: ReadonlySet<string> = new Set([
  // a follower refused it (every host, each time the client was sent on): nothing ran anywhere
  'E_NOT_LEADER',
  // the request's deadline passed before it ran: the host never ran it
  'E_DEADLINE',
  // it waited for the writers' lock and gave up: it did nothing before the lock
  'E_STATE_LOCKED',
  // no host could be connected to: nothing was sent
  'E_CONTROL_UNREACHABLE',
  // a commit refused by the fence (leader epoch or lock) or by a concurrent change: nothing of that
  // commit was written and the operation stopped there, so the plan record it writes last was never
  // written; what it did to the agents before is undone by the leader converging to the recorded plans
  'E_STATE_FENCED',
  'E_STATE_CONFLICT',
]);

/** HaOutcome is what the client knows of a write. */
export type HaOutcome = 'ok' | 'failed' | 'unknown';

/** HaOp is one client operation of the history. */
export interface HaOp {
  /** id numbers the operations in the order they started. */
  id: number;
  client: number;
  plan: string;
  kind: 'apply' | 'destroy';
  /** count is the value written: the copies asked (0 for a destroy). */
  count: number;
  /** start and end are wall-clock milliseconds: before the command started, after its answer. */
  start: number;
  end: number;
  outcome: HaOutcome;
  /** exit is the command's exit code (null: killed at its timeout). */
  exit: number | null;
  /** code is the error code it printed (E_…), or a word for what else happened (timeout, incomplete). */
  code?: string;
}

/** classifyOutcome reads a command's exit and its --json stdout (timedOut: the client killed it). */
export function classifyOutcome(r: { exit: number | null; stdout: string; timedOut: boolean }): { outcome: HaOutcome; code?: string } {
  if (r.timedOut) return { outcome: 'unknown', code: 'timeout' };
  if (r.exit === 0) return { outcome: 'ok' };
  let doc: { error?: { code?: unknown }; ok?: unknown } | undefined;
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    return { outcome: 'unknown', code: 'no-json' };
  }
  const code = typeof doc?.error?.code === 'string' ? doc.error.code : undefined;
  if (code) return { outcome: E_NOT_APPLIED_CODES.has(code) ? 'failed' : 'unknown', code };
  // an answer with a result and a non-zero exit: it ran, and says part of it failed
  return { outcome: 'unknown', code: `incomplete (exit ${r.exit})` };
}

/** Candidate is a value the register may hold at the end, and the write (or the start) that leaves it. */
export interface Candidate {
  count: number;
  /** op is the write, undefined for the initial value. */
  op?: HaOp;
}

/** finalCandidates are the values a plan's register may hold once everything is quiet (see the file's comment). */
export function finalCandidates(history: HaOp[], plan: string): Candidate[] {
  const ops = history.filter((o) => o.plan === plan);
  const acked = ops.filter((o) => o.outcome === 'ok');
  const endOf = (o: HaOp) => (o.outcome === 'unknown' ? Infinity : o.end);
  const out: Candidate[] = acked.length === 0 ? [{ count: 0 }] : [];
  for (const w of ops) {
    if (w.outcome === 'failed') continue;
    if (acked.some((a) => a !== w && a.start > endOf(w))) continue;
    out.push({ count: w.count, op: w });
  }
  return out;
}

/** FinalTask is a task of the final state as `status --json` shows it. */
export interface FinalTask {
  task: string;
  plan: string;
  state: string;
  pid?: number;
}

/** MarkedProcess is a process found by the trial's marker, and the task id it was started for (its FACTORY_TASK). */
export interface MarkedProcess {
  pid: number;
  task?: string;
}

/** Violation is one thing the checks found wrong, with what shows it. */
export interface Violation {
  check: 'lost-write' | 'twice' | 'no-task' | 'no-process';
  detail: string;
}

/**
 * registerValue reads the value a plan's tasks hold: `count` when they are exactly the ids
 * `<plan>/<group>/0` … `/<count - 1>`, all running; undefined (with why) for anything else.
 */
export function registerValue(plan: string, group: string, tasks: FinalTask[]): { count?: number; why?: string } {
  const mine = tasks.filter((t) => t.plan === plan);
  const notRunning = mine.filter((t) => t.state !== 'running');
  if (notRunning.length > 0) return { why: `tasks not running: ${notRunning.map((t) => `${t.task} ${t.state}`).join(', ')}` };
  const ids = new Set(mine.map((t) => t.task));
  for (let i = 0; i < mine.length; i++) if (!ids.has(`${plan}/${group}/${i}`)) return { why: `tasks are not ${plan}/${group}/0…${mine.length - 1}: ${[...ids].sort().join(', ')}` };
  return { count: mine.length };
}

/** describeOp says one operation in a line: what it wrote, when, and how it ended. */
export function describeOp(o: HaOp, t0 = 0): string {
  const what = o.kind === 'destroy' ? 'destroy' : `apply ×${o.count}`;
  return `#${o.id} c${o.client} ${o.plan} ${what} [${o.start - t0}, ${o.end - t0}] ms ${o.outcome}${o.code ? ` (${o.code})` : ''}`;
}

/** checkRegisters compares each plan's final tasks with the values its history allows: an acknowledged write lost is a violation. */
export function checkRegisters(history: HaOp[], plans: string[], group: string, tasks: FinalTask[], t0 = 0): Violation[] {
  const out: Violation[] = [];
  for (const plan of plans) {
    const value = registerValue(plan, group, tasks);
    const cands = finalCandidates(history, plan);
    if (value.count !== undefined && cands.some((c) => c.count === value.count)) continue;
    const last = history.filter((o) => o.plan === plan && o.outcome !== 'failed').slice(-4);
    out.push({
      check: 'lost-write',
      detail: `${plan}: the state holds ${value.count !== undefined ? `${value.count} task(s)` : value.why}; the history allows ${cands.map((c) => (c.op ? `${c.count} (${describeOp(c.op, t0)})` : `${c.count} (nothing acknowledged)`)).join(' or ')}; its last writes: ${last.map((o) => describeOp(o, t0)).join('; ')}`,
    });
  }
  return out;
}

/** twiceOf lists the task ids that more than one of the processes carries, with their pids. */
export function twiceOf(procs: MarkedProcess[]): { task: string; pids: number[] }[] {
  const byTask = new Map<string, number[]>();
  for (const p of procs) if (p.task !== undefined) byTask.set(p.task, [...(byTask.get(p.task) ?? []), p.pid]);
  return [...byTask].filter(([, pids]) => pids.length > 1).map(([task, pids]) => ({ task, pids }));
}

/**
 * checkProcesses compares the running tasks of the state (of the plans checked) with the marked
 * processes: each task id runs at most once, each marked process is a running task with its pid,
 * and each running task has its process.
 */
export function checkProcesses(tasks: FinalTask[], procs: MarkedProcess[]): Violation[] {
  const out: Violation[] = [];
  for (const { task, pids } of twiceOf(procs)) out.push({ check: 'twice', detail: `${task} runs ${pids.length} times: pids ${pids.join(', ')}` });
  const running = new Map(tasks.filter((t) => t.state === 'running').map((t) => [t.task, t]));
  for (const p of procs) {
    const t = p.task !== undefined ? running.get(p.task) : undefined;
    if (!t || t.pid !== p.pid) out.push({ check: 'no-task', detail: `pid ${p.pid} (${p.task ?? 'no FACTORY_TASK'}) is ${t ? `not the pid the state has for it (${t.pid})` : 'no running task of the state'}` });
  }
  const pidsOf = new Set(procs.map((p) => `${p.task}@${p.pid}`));
  for (const t of running.values()) if (!pidsOf.has(`${t.task}@${t.pid}`)) out.push({ check: 'no-process', detail: `${t.task} is running in the state with pid ${t.pid ?? '(none)'}, and no such process runs` });
  return out;
}
