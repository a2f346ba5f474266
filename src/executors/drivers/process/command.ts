/**
 * What a process task runs and where: the checks of its run request, its working folder, its
 * environment, and argv[0] resolved to an executable the way exec(3) would, so that a missing command
 * is a failed status with exec's message and nothing is spawned.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TaskRunSpec } from '../../../protocol/messages.js';
import { hasSpecHash, type SpecCheck } from '../shared/run-spec.js';

/** DEFAULT_PATH is the PATH a task gets when the executor has none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** PROCESS_SPEC_CHECKS are what a process task's run request must satisfy: a command to exec, env as an object. */
export const PROCESS_SPEC_CHECKS: readonly SpecCheck[] = [
  (spec) => (!Array.isArray(spec.command) || spec.command.length === 0 || spec.command.some((a) => typeof a !== 'string') ? 'command must be a non-empty array of strings' : undefined),
  hasSpecHash,
  (spec) => (spec.env && typeof spec.env !== 'object' ? 'env must be an object' : undefined),
  (spec) => (spec.command.some((a) => a.includes('\0')) ? 'command contains a NUL byte' : undefined),
];

function isExecutableFile(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** resolveCommand finds the executable for argv[0] like exec(3) would: a path as is, else a search of PATH. */
export function resolveCommand(cmd: string | undefined, cwd: string, pathVar: string): { path: string } | { error: string } {
  if (!cmd) return { error: 'exec "": empty command' };
  if (cmd.includes('/')) {
    const abs = path.resolve(cwd, cmd);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      return { error: `exec "${cmd}": stat ${cmd}: no such file or directory` };
    }
    if (!st.isFile()) return { error: `exec "${cmd}": not a regular file` };
    try {
      fs.accessSync(abs, fs.constants.X_OK);
    } catch {
      return { error: `exec "${cmd}": permission denied` };
    }
    return { path: abs };
  }
  for (const d of pathVar.split(':')) {
    const p = path.resolve(cwd, d || '.', cmd);
    if (isExecutableFile(p)) return { path: p };
  }
  return { error: `exec "${cmd}": executable file not found in $PATH` };
}

/** TaskCommand is how a task's command is started: in cwd, with env, argv[0] an executable's path. */
export interface TaskCommand {
  cwd: string;
  env: Record<string, string>;
  argv: string[];
}

/**
 * commandOf works out the command of the task in folder dir: its working folder (the spec's, relative to
 * dir, else dir), its environment (PATH, HOME, LANG of the executor, the spec's env, FACTORY_TASK and
 * FACTORY_TASK_DIR) and its executable — or the reason it cannot run.
 */
export function commandOf(spec: TaskRunSpec, dir: string): TaskCommand | { error: string } {
  const cwd = spec.workingDir ? path.resolve(dir, spec.workingDir) : dir;
  if (spec.workingDir) {
    try {
      if (!fs.statSync(cwd).isDirectory()) return { error: `workingDir "${spec.workingDir}": not a directory` };
    } catch {
      return { error: `workingDir "${spec.workingDir}": no such file or directory` };
    }
  }
  const env: Record<string, string> = {
    PATH: process.env.PATH || DEFAULT_PATH,
    HOME: process.env.HOME || '/',
    ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
    ...spec.env,
    FACTORY_TASK: spec.task,
    FACTORY_TASK_DIR: dir,
  };
  const resolved = resolveCommand(spec.command[0], cwd, env.PATH ?? DEFAULT_PATH);
  if ('error' in resolved) return resolved;
  return { cwd, env, argv: [resolved.path, ...spec.command.slice(1)] };
}
