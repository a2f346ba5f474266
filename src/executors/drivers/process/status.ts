/**
 * A process task's status, computed from its folder and /proc alone (the executor keeps nothing in
 * memory): running (the command's pid is alive and started when recorded), pending (the shim is
 * alive, no pid yet), finished / failed (the shim's exit file), exited (no exit file: the shim was
 * killed), stopped (stopped on purpose and kept), failed with `error` (could not start), and a
 * running task's health as its prober last wrote it (health.ts): failed when unhealthy, unless its
 * restart policy is never.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskStatus } from '../../../protocol/messages.js';
import { signalOfExitStatus } from '../shared/signals.js';
import { isAlive } from './procfs.js';
import { readExit, readPid, type TaskMarker } from './task-files.js';
import { readHealth } from './health.js';

/** taskStatusOf computes a task's status from its folder and marker; it never signals anything. */
export async function taskStatusOf(dir: string, m: TaskMarker): Promise<TaskStatus> {
  const s: TaskStatus = {
    task: m.spec.task,
    driver: 'process',
    state: 'unknown',
    specHash: m.spec.specHash,
    labels: m.spec.labels,
    resources: m.spec.resources,
    limits: m.limits,
    startedAt: m.startedAt,
    ...(m.state ? { stateId: m.state } : {}),
  };
  if (m.error) {
    s.state = 'failed';
    s.error = m.error;
    return s;
  }
  const pid = m.pid ?? readPid(dir);
  const pidStart = m.pid !== undefined ? m.pidStart : undefined;
  if (pid !== undefined) s.pid = pid;
  if (pid !== undefined && isAlive(pid, pidStart)) {
    s.state = 'running';
    if (m.spec.health) {
      const h = readHealth(dir);
      s.health = h.health;
      if (h.health === 'unhealthy' && m.spec.restart !== 'never') {
        // not live, as a container Docker finds unhealthy: the next pass restarts it (restart always / on-failure)
        s.state = 'failed';
        s.error = `unhealthy: ${h.fails} failed checks`;
      }
    }
    return s;
  }
  let exit = readExit(dir);
  if (exit === undefined && isAlive(m.pgid, m.shimStart)) {
    if (pid === undefined) {
      s.state = 'pending';
      return s;
    }
    // The command just ended: give the shim a moment to record its status.
    for (let i = 0; i < 25 && exit === undefined; i++) {
      await sleep(20);
      exit = readExit(dir);
    }
  }
  if (exit !== undefined) {
    s.finishedAt = exit.at;
    const signal = signalOfExitStatus(exit.code);
    if (signal) s.signal = signal;
    else s.exitCode = exit.code;
  }
  if (m.stoppedAt) {
    s.state = 'stopped';
    s.finishedAt = s.finishedAt ?? m.stoppedAt;
  } else if (exit === undefined) {
    s.state = 'exited';
  } else {
    s.state = exit.code === 0 ? 'finished' : 'failed';
  }
  return s;
}
