/**
 * Starting a process task, and waiting for the pid of one found pending: the shim writes
 * the command's pid to `pid` once it has spawned it, and task.json records it with its start time.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FactoryError } from '../../../errors.js';
import type { LimitsMode, TaskRunSpec, TaskStatus } from '../../../protocol/messages.js';
import type { DriverContext } from '../driver.js';
import type { TaskCgroups } from './cgroups.js';
import { commandOf } from './command.js';
import { isAlive, procStat } from './procfs.js';
import { shimArgs } from './shim.js';
import { startProber } from './health.js';
import { taskStatusOf } from './status.js';
import { forgetRun, fsError, readFileOr, readPid, writeMarker, type TaskMarker } from './task-files.js';

/**
 * startTask starts the task in folder dir: resolves its command (a missing one is a failed status and
 * nothing is spawned), creates its cgroups (falling back to the rlimit), spawns the shim detached with
 * stdout/stderr appended to the logs, and waits up to 2 s for the command's pid. task.json records each
 * step, so an executor killed midway leaves a task that is reported and stoppable.
 */
export async function startTask(spec: TaskRunSpec, dir: string, ctx: DriverContext, cgroups: TaskCgroups): Promise<TaskStatus> {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw fsError(`cannot create task folder ${dir} in workDir ${ctx.workDir}`, err);
  }
  forgetRun(dir);
  const startedAt = new Date().toISOString();
  const marker: TaskMarker = { version: 1, spec, startedAt, limits: ctx.limits, cgroups: [], ...(ctx.state ? { state: ctx.state } : {}) };
  const fail = async (error: string): Promise<TaskStatus> => {
    marker.error = error;
    writeMarker(dir, marker);
    return taskStatusOf(dir, marker);
  };

  const command = commandOf(spec, dir);
  if ('error' in command) return fail(command.error);

  // Limits: cgroups when the host allows it, else an address-space rlimit in the shim.
  let limits: LimitsMode = ctx.limits;
  let procs: string[] = [];
  if (limits === 'cgroup-v1' || limits === 'cgroup-v2') {
    try {
      const cg = cgroups.create(spec, dir);
      marker.cgroups = cg.dirs;
      procs = cg.procs;
    } catch (err) {
      ctx.log(`process driver: ${spec.task}: cgroup setup failed (${(err as Error).message}); falling back to rlimit`);
      limits = 'rlimit';
    }
  }
  const mem = spec.resources?.mem ?? 0;
  const vmemKb = limits === 'rlimit' && mem > 0 ? String(Math.ceil(mem / 1024)) : '';
  marker.limits = limits;

  let out: number | undefined;
  let errFd: number | undefined;
  try {
    out = fs.openSync(path.join(dir, 'stdout.log'), 'a');
    errFd = fs.openSync(path.join(dir, 'stderr.log'), 'a');
    writeMarker(dir, marker);
  } catch (err) {
    if (out !== undefined) fs.closeSync(out);
    if (errFd !== undefined) fs.closeSync(errFd);
    await cgroups.remove(marker.cgroups);
    throw err instanceof FactoryError ? err : fsError(`cannot create log files in ${dir}`, err);
  }
  let spawnError: Error | undefined;
  const child = spawn('/bin/sh', shimArgs(dir, vmemKb, procs, command.argv), { cwd: command.cwd, env: command.env, detached: true, stdio: ['ignore', out, errFd] });
  child.on('error', (err) => {
    spawnError = err;
  });
  child.unref();
  fs.closeSync(out);
  fs.closeSync(errFd);
  if (child.pid === undefined) {
    await sleep(0);
    await cgroups.remove(marker.cgroups);
    marker.cgroups = [];
    return fail(`cannot start /bin/sh: ${spawnError?.message ?? 'spawn failed'}`);
  }
  marker.pgid = child.pid;
  const shim = procStat(child.pid);
  if (shim) marker.shimStart = shim.start;
  writeMarker(dir, marker);

  // Wait (bounded) for the shim to start the command and write its pid.
  let pid: number | undefined;
  for (let i = 0; i < 100; i++) {
    pid = readPid(dir);
    if (pid !== undefined) break;
    if (child.exitCode !== null || child.signalCode !== null) break;
    await sleep(20);
  }
  if (pid === undefined) {
    pid = readPid(dir);
    if (pid === undefined) {
      const tail = (readFileOr(path.join(dir, 'stderr.log')) ?? '').trim().split('\n').slice(-3).join(' / ');
      if (isAlive(marker.pgid, marker.shimStart)) {
        try {
          process.kill(-marker.pgid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await cgroups.remove(marker.cgroups);
      marker.cgroups = [];
      return fail(`the shim did not start the command within 2s${tail ? `: ${tail}` : ''}`);
    }
  }
  recordPid(dir, marker, pid);
  startProber(dir, marker, pid, command, ctx.log);
  if (marker.proberPgid) writeMarker(dir, marker);
  return taskStatusOf(dir, marker);
}

/** awaitPid waits (up to 2 s, while the shim lives) for the pid of a task found pending (shim started, no pid written yet) and records it. */
export async function awaitPid(dir: string, m: TaskMarker): Promise<TaskStatus> {
  for (let i = 0; i < 100 && readPid(dir) === undefined && isAlive(m.pgid, m.shimStart); i++) await sleep(20);
  const pid = readPid(dir);
  if (pid !== undefined && m.pid === undefined) recordPid(dir, m, pid);
  return taskStatusOf(dir, m);
}

/** recordPid writes the command's pid and start time to task.json. */
function recordPid(dir: string, m: TaskMarker, pid: number): void {
  m.pid = pid;
  const st = procStat(pid);
  if (st) m.pidStart = st.start;
  writeMarker(dir, m);
}
