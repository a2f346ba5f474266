/**
 * Ending a process task's processes. Only what the task started is signalled: its process group while
 * the shim or the command is still the process that was started (the start times in task.json defeat
 * pid reuse), and whatever sits in the task's own cgroups.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupMembers, isAlive } from './procfs.js';
import { readFileOr, type TaskMarker } from './task-files.js';

/** taskPids lists the live processes the task started (never the executor itself). */
function taskPids(m: TaskMarker): number[] {
  const pids = new Set<number>();
  const shimAlive = isAlive(m.pgid, m.shimStart);
  const cmdAlive = m.pid !== undefined && isAlive(m.pid, m.pidStart);
  if (m.pgid && (shimAlive || cmdAlive)) for (const p of groupMembers(m.pgid)) pids.add(p);
  if (shimAlive && m.pgid) pids.add(m.pgid);
  if (cmdAlive && m.pid) pids.add(m.pid);
  // Whatever sits in the task's own cgroups was started by this task.
  for (const cg of m.cgroups ?? []) {
    const text = readFileOr(path.join(cg, 'cgroup.procs')) ?? '';
    for (const l of text.split('\n')) if (/^\d+$/.test(l.trim())) pids.add(Number(l.trim()));
  }
  return [...pids].filter((p) => isAlive(p) && p !== process.pid);
}

/** signalTask sends sig to the task's process group and each of its processes; returns how many processes were alive. */
function signalTask(m: TaskMarker, sig: NodeJS.Signals): number {
  const pids = taskPids(m);
  if (pids.length === 0) return 0;
  if (m.pgid && (isAlive(m.pgid, m.shimStart) || (m.pid !== undefined && isAlive(m.pid, m.pidStart)))) {
    try {
      process.kill(-m.pgid, sig);
    } catch {
      /* group gone */
    }
  }
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      /* gone */
    }
  }
  return pids.length;
}

/**
 * terminate sends SIGTERM to the task's processes, SIGKILL to what is left after graceMs (repeated for
 * up to 5 s until none is left), then gives the shim up to 0.5 s to record the exit status.
 */
export async function terminate(m: TaskMarker, graceMs: number, log: (msg: string) => void): Promise<void> {
  if (signalTask(m, 'SIGTERM') > 0) {
    const until = Date.now() + graceMs;
    while (Date.now() < until && taskPids(m).length > 0) await sleep(50);
    if (taskPids(m).length > 0) {
      log(`process driver: ${m.spec.task}: still running after ${graceMs}ms grace, sending SIGKILL`);
      for (let i = 0; i < 100 && signalTask(m, 'SIGKILL') > 0; i++) await sleep(50);
    }
  }
  // Let the shim record the exit status if it is still finishing.
  for (let i = 0; i < 25 && isAlive(m.pgid, m.shimStart); i++) await sleep(20);
}
