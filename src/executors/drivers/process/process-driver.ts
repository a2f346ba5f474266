/**
 * The process driver: runs a task's argv as a detached process group that outlives the executor and
 * the CLI, with limits from cgroups (v1 or v2) or rlimits, and leaves on the host everything needed to
 * adopt it later: `<workDir>/tasks/<task with / → .>/{task.json,pid,exit,stdout.log,stderr.log}`.
 *
 * Processes are launched through a constant shim script; plan values reach it only as positional
 * arguments, so nothing from a plan is ever interpreted by a shell.
 *
 * This file decides which folder is a task's and what a call does (adopt, restart, stop, stream);
 * the work is in its neighbours (README.md in this folder).
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import type { TaskRunSpec, TaskStatus } from '../../../protocol/messages.js';
import { CGROUP_ROOT } from '../../discovery.js';
import { stateSuffix, type Driver, type DriverContext, type LogOptions, type StopOptions } from '../driver.js';
import { KeyedQueue } from '../keyed-queue.js';
import { streamLogFiles } from '../shared/log-files.js';
import { checkNotTooLate, checkRunSpec } from '../shared/run-spec.js';
import { taskDirName } from '../shared/task-id.js';
import { TaskCgroups } from './cgroups.js';
import { commandOf, PROCESS_SPEC_CHECKS } from './command.js';
import { awaitPid, startTask } from './start.js';
import { taskStatusOf } from './status.js';
import { terminate } from './stop.js';
import { startProber, stopProber } from './health.js';
import { forgetRun, fsError, readMarker, readPid, writeMarker, type TaskMarker } from './task-files.js';
import { isAlive } from './procfs.js';

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
      if (!m) continue;
      const s = await taskStatusOf(dir, m);
      out.push(s);
      if (s.pid !== undefined && s.health !== undefined && !isAlive(m.proberPgid, m.proberStart)) void this.queue.run(m.spec.task, () => this.healProber(dir));
    }
    return out;
  }

  /**
   * healProber starts the prober of a running task with a health check that has none (the executor
   * that started it died before it started its prober, or the prober was killed): every session's
   * first look (and a warm session's every look) finds it, so health is never left unknown for long.
   */
  private async healProber(dir: string): Promise<void> {
    const m = readMarker(dir, this.ctx.log);
    if (!m?.spec.health || m.stoppedAt || isAlive(m.proberPgid, m.proberStart)) return;
    const pid = m.pid ?? readPid(dir);
    if (pid === undefined || !isAlive(pid, m.pid !== undefined ? m.pidStart : undefined)) return;
    const cmd = commandOf(m.spec, dir);
    if ('error' in cmd) return;
    this.ctx.log(`process driver: ${m.spec.task}: its health prober is not running, starting it`);
    startProber(dir, m, pid, cmd, this.ctx.log, { keepHealth: true });
    writeMarker(dir, m);
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
        // a run-once task (a job run) that exists is reported as it is: a start sent twice runs it once
        if (spec.once) return cur.state === 'pending' ? awaitPid(dir, m) : cur;
        if (cur.state === 'running' || cur.state === 'pending') {
          if (m.spec.specHash === spec.specHash) {
            if (cur.state === 'pending') return awaitPid(dir, m);
            return cur;
          }
          this.ctx.log(`process driver: ${spec.task}: spec changed (${m.spec.specHash} → ${spec.specHash}), restarting`);
          await this.stopDir(dir, spec.task, { remove: false });
        } else if (cur.health === 'unhealthy' && cur.pid !== undefined && isAlive(cur.pid, m.pidStart)) {
          // reported failed for its health check, but its command still runs: it ends before the new one starts
          this.ctx.log(`process driver: ${spec.task}: unhealthy, restarting`);
          await this.stopDir(dir, spec.task, { remove: false });
        } else {
          await this.cleanup(dir, m);
        }
      }
      checkNotTooLate(spec);
      return startTask(spec, dir, this.ctx, this.cgroups);
    });
  }

  /** cleanup forgets a dead task's previous run (pid/exit files, cgroups), keeping its logs. */
  private async cleanup(dir: string, m: TaskMarker): Promise<void> {
    forgetRun(dir);
    if (m.cgroups?.length) await this.cgroups.remove(m.cgroups);
  }

  /** stop sends SIGTERM to the task's process group, SIGKILL after the grace period, then cleans up. */
  async stop(task: string, opts: StopOptions = {}): Promise<TaskStatus> {
    taskDirName(task);
    return this.queue.run(task, () => this.stopDir(this.taskDir(task), task, opts));
  }

  private async stopDir(dir: string, task: string, opts: StopOptions): Promise<TaskStatus> {
    const m = readMarker(dir, this.ctx.log);
    if (!m) {
      if (opts.remove !== false) fs.rmSync(dir, { recursive: true, force: true });
      return { task, driver: 'process', state: 'stopped', specHash: '', labels: { plan: '', group: '', project: '' } };
    }
    const grace = Math.max(0, opts.graceMs ?? m.spec.stopGraceMs ?? 10000);
    await terminate(m, grace, this.ctx.log);
    stopProber(m);
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
