/**
 * The files of a process task's folder and how they are read and written:
 *
 *   task.json   the marker (TaskMarker), written by the driver, atomically (temp file + rename)
 *   pid         the command's pid, written by the shim
 *   exit        the command's wait status, written by the shim (temp file + mv)
 *   health      the health check's outcome, written by the prober (health.ts; temp file + mv)
 *
 * A file that cannot be read reads as undefined: the folder is the truth, and a task half written
 * (an executor killed mid-start) must still be reported and stoppable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import type { LimitsMode, TaskRunSpec } from '../../../protocol/messages.js';

/** TaskMarker is the content of `task.json`: what the driver needs to recognise and adopt a task. */
export interface TaskMarker {
  version: 1;
  spec: TaskRunSpec;
  /** pgid is the shim's pid, which leads the task's process group and session. */
  pgid?: number;
  /** shimStart is the shim's start time (/proc/<pid>/stat field 22). */
  shimStart?: string;
  /** pid is the command's pid (what `factory status` shows). */
  pid?: number;
  /** pidStart is the command's start time, to tell it from a later process that reused the pid. */
  pidStart?: string;
  startedAt: string;
  limits: LimitsMode;
  /** cgroups are the cgroup folders created for the task (removed on stop). */
  cgroups: string[];
  /** error is why the task could not start (no process exists then). */
  error?: string;
  /** stoppedAt is set when the task was stopped on purpose but kept (remove: false). */
  stoppedAt?: string;
  /** state is the id of the factory state that started the task; absent for legacy tasks. */
  state?: string;
  /** proberPgid and proberStart are the health prober's (health.ts), when the spec has a check. */
  proberPgid?: number;
  proberStart?: string;
}

/** fsError turns a failed file operation in the workDir into a FactoryError that names the reason (E_NOSPC, else E_WORKDIR). */
export function fsError(what: string, err: unknown): FactoryError {
  const e = err as NodeJS.ErrnoException;
  const reason =
    e.code === 'ENOSPC' ? 'no space left on device' :
    e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' :
    e.code === 'EROFS' ? 'read-only file system' :
    e.code === 'EDQUOT' ? 'disk quota exceeded' :
    e.message;
  return new FactoryError(`${what}: ${reason}${e.code ? ` (${e.code})` : ''}`, { code: e.code === 'ENOSPC' ? 'E_NOSPC' : 'E_WORKDIR', cause: err });
}

/** readFileOr is a small file's text, or undefined when it cannot be read. */
export function readFileOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** readMarker reads a folder's task.json; undefined when absent or not a marker (an unreadable one is logged). */
export function readMarker(dir: string, log: (msg: string) => void): TaskMarker | undefined {
  const text = readFileOr(path.join(dir, 'task.json'));
  if (text === undefined) return undefined;
  try {
    const m = JSON.parse(text) as TaskMarker;
    if (!m || typeof m !== 'object' || !m.spec || typeof m.spec.task !== 'string') return undefined;
    return m;
  } catch {
    log(`process driver: ignoring unreadable marker ${path.join(dir, 'task.json')}`);
    return undefined;
  }
}

/** writeMarker replaces a folder's task.json atomically. */
export function writeMarker(dir: string, m: TaskMarker): void {
  try {
    writeAtomic(path.join(dir, 'task.json'), `${JSON.stringify(m, null, 2)}\n`);
  } catch (err) {
    throw fsError(`cannot write task marker in ${dir}`, err);
  }
}

/** readPid is the command's pid as the shim wrote it, undefined until then. */
export function readPid(dir: string): number | undefined {
  const t = readFileOr(path.join(dir, 'pid'))?.trim();
  const n = t ? Number(t) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** readExit is the command's wait status as the shim wrote it, with the file's time as when it ended. */
export function readExit(dir: string): { code: number; at: string } | undefined {
  const file = path.join(dir, 'exit');
  const t = readFileOr(file)?.trim();
  if (t === undefined || t === '' || !/^\d+$/.test(t)) return undefined;
  let at = new Date().toISOString();
  try {
    at = fs.statSync(file).mtime.toISOString();
  } catch {
    /* keep now */
  }
  return { code: Number(t), at };
}

/** forgetRun deletes a previous run's pid, exit and health files, so they are not mistaken for the next run's (logs stay). */
export function forgetRun(dir: string): void {
  for (const f of ['pid', 'exit', 'pid.tmp', 'exit.tmp', 'health', 'health.tmp']) fs.rmSync(path.join(dir, f), { force: true });
}
