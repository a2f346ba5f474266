/**
 * The process driver: runs a task's argv as a detached process group that outlives the executor and
 * the CLI, with limits from cgroups (v1 or v2) or rlimits, and leaves on the host everything needed to
 * adopt it later: `<workDir>/tasks/<task with / → .>/{task.json,pid,exit,stdout.log,stderr.log}`.
 *
 * Processes are launched through a constant shim script; plan values reach it only as positional
 * arguments, so nothing from a plan is ever interpreted by a shell.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import type { LimitsMode, TaskRunSpec, TaskStatus } from '../../../protocol/messages.js';
import { CGROUP_ROOT } from '../../discovery.js';
import { stateSuffix, type Driver, type DriverContext, type LogOptions, type StopOptions } from '../driver.js';
import { KeyedQueue } from '../keyed-queue.js';
import { streamLogFiles } from '../shared/log-files.js';
import { TaskCgroups } from './cgroups.js';
import { commandOf, PROCESS_SPEC_CHECKS } from './command.js';
import { groupMembers, isAlive, procStat } from './procfs.js';
import { taskStatusOf } from './status.js';
import { forgetRun, fsError, readFileOr, readMarker, readPid, writeMarker, type TaskMarker } from './task-files.js';
import { checkRunSpec } from '../shared/run-spec.js';
import { taskDirName } from '../shared/task-id.js';

/**
 * SHIM_SCRIPT is the constant `sh -c` script every process task starts through. Arguments:
 * `$1` task folder, `$2` rlimit for virtual memory in KiB ('' for none), `$3` number N of cgroup.procs
 * files to join, then N paths, then the command's argv (already resolved to an executable path).
 */
export const SHIM_SCRIPT = [
  'dir=$1; vmem=$2; n=$3; shift 3',
  'while [ "$n" -gt 0 ]; do',
  '  echo $$ > "$1" || echo "factory-shim: cannot join cgroup $1" >&2',
  '  n=$((n - 1)); shift',
  'done',
  'if [ -n "$vmem" ]; then ulimit -v "$vmem" || echo "factory-shim: cannot set ulimit -v $vmem" >&2; fi',
  'trapped=',
  'child=',
  'trap \'trapped=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null\' TERM',
  'trap \'trapped=1; [ -n "$child" ] && kill -INT "$child" 2>/dev/null\' INT',
  '"$@" &',
  'child=$!',
  'echo "$child" > "$dir/pid.tmp" && mv -f "$dir/pid.tmp" "$dir/pid"',
  'while :; do',
  '  wait "$child"; status=$?',
  '  if [ "$status" -gt 128 ] && [ -n "$trapped" ]; then trapped=; continue; fi',
  '  break',
  'done',
  'echo "$status" > "$dir/exit.tmp" && mv -f "$dir/exit.tmp" "$dir/exit"',
  'exit "$status"',
].join('\n');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** ProcessDriver runs tasks as detached process groups with marker files under `<workDir>/tasks`. */
export class ProcessDriver implements Driver {
  /** name is always 'process'. */
  readonly name = 'process' as const;
  private readonly tasksDir: string;
  private readonly queue = new KeyedQueue();
  private readonly cgroups: TaskCgroups;

  constructor(private readonly ctx: DriverContext, opts: { cgroupRoot?: string } = {}) {
    this.tasksDir = path.join(ctx.workDir, 'tasks');
    this.cgroups = new TaskCgroups({ root: opts.cgroupRoot ?? CGROUP_ROOT, limits: ctx.limits, workDir: ctx.workDir, log: ctx.log });
  }

  /**
   * newTaskDir is the folder a task of this session's state starts in: `<plan.group.index>_<8 hex of
   * the state id>` (so two states running the same plan on one workDir never collide), or the legacy
   * `<plan.group.index>` for a session without a state.
   */
  newTaskDir(task: string): string {
    return path.join(this.tasksDir, taskDirName(task) + stateSuffix(this.ctx.state));
  }

  /**
   * taskDir is the folder of one task of this session: its state's folder when it has a marker there,
   * else the legacy folder when its marker records no state (a task started before states had ids),
   * else the state's folder. Another state's task is never found here.
   */
  taskDir(task: string): string {
    const own = this.newTaskDir(task);
    if (!this.ctx.state || fs.existsSync(path.join(own, 'task.json'))) return own;
    const legacy = path.join(this.tasksDir, taskDirName(task));
    const m = readMarker(legacy, this.ctx.log);
    return m && m.state === undefined ? legacy : own;
  }

  /** status reports one task, or undefined when there is no marker for it. */
  async status(task: string): Promise<TaskStatus | undefined> {
    const dir = this.taskDir(task);
    const m = readMarker(dir, this.ctx.log);
    return m ? taskStatusOf(dir, m) : undefined;
  }

  /** inspect lists every task with a marker under `<workDir>/tasks`. */
  async inspect(): Promise<TaskStatus[]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.tasksDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fsError(`cannot read ${this.tasksDir}`, err);
    }
    const out: TaskStatus[] = [];
    for (const n of names.sort()) {
      const dir = path.join(this.tasksDir, n);
      const m = readMarker(dir, this.ctx.log);
      if (m) out.push(await taskStatusOf(dir, m));
    }
    return out;
  }

  /** run starts the task, adopts it when it runs with the same specHash, restarts it when dead or changed. */
  async run(spec: TaskRunSpec): Promise<TaskStatus> {
    checkRunSpec(spec, PROCESS_SPEC_CHECKS);
    return this.queue.run(spec.task, async () => {
      // only this state's own folder: a legacy task of that id is adopted by nobody, its record decides
      const dir = this.newTaskDir(spec.task);
      const m = readMarker(dir, this.ctx.log);
      if (m) {
        const cur = await taskStatusOf(dir, m);
        if (cur.state === 'running' || cur.state === 'pending') {
          if (m.spec.specHash === spec.specHash) {
            if (cur.state === 'pending') return this.awaitPid(dir, m);
            return cur;
          }
          this.ctx.log(`process driver: ${spec.task}: spec changed (${m.spec.specHash} → ${spec.specHash}), restarting`);
          await this.stopDir(dir, spec.task, { remove: false });
        } else {
          await this.cleanup(dir, m);
        }
      }
      return this.start(spec, dir);
    });
  }

  private async awaitPid(dir: string, m: TaskMarker): Promise<TaskStatus> {
    for (let i = 0; i < 100 && readPid(dir) === undefined && isAlive(m.pgid, m.shimStart); i++) await sleep(20);
    const pid = readPid(dir);
    if (pid !== undefined && m.pid === undefined) {
      const st = procStat(pid);
      m.pid = pid;
      if (st) m.pidStart = st.start;
      writeMarker(dir, m);
    }
    return taskStatusOf(dir, m);
  }

  /** cleanup forgets a dead task's previous run (pid/exit files, cgroups), keeping its logs. */
  private async cleanup(dir: string, m: TaskMarker): Promise<void> {
    forgetRun(dir);
    if (m.cgroups?.length) await this.cgroups.remove(m.cgroups);
  }

  private async start(spec: TaskRunSpec, dir: string): Promise<TaskStatus> {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw fsError(`cannot create task folder ${dir} in workDir ${this.ctx.workDir}`, err);
    }
    forgetRun(dir);
    const startedAt = new Date().toISOString();
    const marker: TaskMarker = { version: 1, spec, startedAt, limits: this.ctx.limits, cgroups: [], ...(this.ctx.state ? { state: this.ctx.state } : {}) };
    const fail = async (error: string): Promise<TaskStatus> => {
      marker.error = error;
      writeMarker(dir, marker);
      return taskStatusOf(dir, marker);
    };

    const command = commandOf(spec, dir);
    if ('error' in command) return fail(command.error);

    // Limits: cgroups when the host allows it, else an address-space rlimit in the shim.
    let limits: LimitsMode = this.ctx.limits;
    let procs: string[] = [];
    if (limits === 'cgroup-v1' || limits === 'cgroup-v2') {
      try {
        const cg = this.cgroups.create(spec, dir);
        marker.cgroups = cg.dirs;
        procs = cg.procs;
      } catch (err) {
        this.ctx.log(`process driver: ${spec.task}: cgroup setup failed (${(err as Error).message}); falling back to rlimit`);
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
      await this.cgroups.remove(marker.cgroups);
      throw err instanceof FactoryError ? err : fsError(`cannot create log files in ${dir}`, err);
    }
    const args = ['-c', SHIM_SCRIPT, 'factory-shim', dir, vmemKb, String(procs.length), ...procs, ...command.argv];
    let spawnError: Error | undefined;
    const child = spawn('/bin/sh', args, { cwd: command.cwd, env: command.env, detached: true, stdio: ['ignore', out, errFd] });
    child.on('error', (err) => {
      spawnError = err;
    });
    child.unref();
    fs.closeSync(out);
    fs.closeSync(errFd);
    if (child.pid === undefined) {
      await sleep(0);
      await this.cgroups.remove(marker.cgroups);
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
        await this.cgroups.remove(marker.cgroups);
        marker.cgroups = [];
        return fail(`the shim did not start the command within 2s${tail ? `: ${tail}` : ''}`);
      }
    }
    marker.pid = pid;
    const st = procStat(pid);
    if (st) marker.pidStart = st.start;
    writeMarker(dir, marker);
    return taskStatusOf(dir, marker);
  }

  /** stop sends SIGTERM to the task's process group, SIGKILL after the grace period, then cleans up. */
  async stop(task: string, opts: StopOptions = {}): Promise<TaskStatus> {
    taskDirName(task);
    return this.queue.run(task, () => this.stopLocked(task, opts));
  }

  private ourPids(m: TaskMarker): number[] {
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

  private signalAll(m: TaskMarker, sig: NodeJS.Signals): number {
    const pids = this.ourPids(m);
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

  private async stopLocked(task: string, opts: StopOptions): Promise<TaskStatus> {
    return this.stopDir(this.taskDir(task), task, opts);
  }

  private async stopDir(dir: string, task: string, opts: StopOptions): Promise<TaskStatus> {
    const m = readMarker(dir, this.ctx.log);
    if (!m) {
      if (opts.remove !== false) fs.rmSync(dir, { recursive: true, force: true });
      return { task, driver: 'process', state: 'stopped', specHash: '', labels: { plan: '', group: '', project: '' } };
    }
    const grace = Math.max(0, opts.graceMs ?? m.spec.stopGraceMs ?? 10000);
    if (this.signalAll(m, 'SIGTERM') > 0) {
      const until = Date.now() + grace;
      while (Date.now() < until && this.ourPids(m).length > 0) await sleep(50);
      if (this.ourPids(m).length > 0) {
        this.ctx.log(`process driver: ${task}: still running after ${grace}ms grace, sending SIGKILL`);
        for (let i = 0; i < 100 && this.signalAll(m, 'SIGKILL') > 0; i++) await sleep(50);
      }
    }
    // Let the shim record the exit status if it is still finishing.
    for (let i = 0; i < 25 && isAlive(m.pgid, m.shimStart); i++) await sleep(20);
    await this.cgroups.remove(m.cgroups ?? []);
    m.cgroups = [];
    m.stoppedAt = new Date().toISOString();
    const status = await taskStatusOf(dir, m);
    if (opts.remove !== false) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch (err) {
        throw fsError(`cannot remove task folder ${dir}`, err);
      }
    } else {
      writeMarker(dir, m);
    }
    return status;
  }

  /** logs streams the task's stdout/stderr log files: all or the last `tail` lines, then new data with follow. */
  async logs(
    task: string,
    opts: LogOptions,
    onData: (stream: 'stdout' | 'stderr', data: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const dir = this.taskDir(task);
    if (!readMarker(dir, this.ctx.log)) throw new FactoryError(`task ${task} not found`, { code: 'E_NOT_FOUND' });
    const streams: Array<'stdout' | 'stderr'> = opts.stream === 'both' ? ['stdout', 'stderr'] : [opts.stream];
    const files = streams.map((stream) => ({ stream, file: path.join(dir, `${stream}.log`) }));
    await streamLogFiles(files, { tail: opts.tail, follow: opts.follow, pollMs: 200, present: () => fs.existsSync(dir) }, onData, signal);
  }
}
