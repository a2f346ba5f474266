/**
 * The driver interface: how an executor runs one kind of task (process, docker, libvirt). What only
 * some drivers do is a capability (capabilities.ts); which drivers exist is the registry (registry.ts).
 * A driver keeps no state in memory that matters: everything it needs to adopt a task after a
 * restart of the executor lives on the host (marker files, labels, domain metadata).
 */
import type { LimitsMode, TaskRunSpec, TaskStatus } from '../../protocol/messages.js';
import type { Driver as DriverName } from '../../scheduler/types.js';

/** StopOptions controls a stop: how long to wait after SIGTERM, and whether to delete everything afterwards. */
export interface StopOptions {
  /** graceMs is the wait between SIGTERM and SIGKILL; defaults to the task's stopGraceMs. */
  graceMs?: number;
  /** remove deletes the task's folder, logs and cgroups after it stopped (default true). */
  remove?: boolean;
}

/** LogOptions selects what a logs request reads. */
export interface LogOptions {
  stream: 'stdout' | 'stderr' | 'both';
  /** follow keeps streaming new output until the signal aborts. */
  follow: boolean;
  /** tail limits the initial output to the last N lines of each stream. */
  tail?: number;
}

/** DriverContext is what every driver gets from the executor. */
export interface DriverContext {
  /** workDir is the executor's folder on the host; drivers keep per-task folders under it. */
  workDir: string;
  /** limits is the host's limit enforcement mode (from discovery). */
  limits: LimitsMode;
  /** log writes a diagnostic line (to the executor's stderr, never stdout). */
  log: (msg: string) => void;
  /** agent is the agent's name as the control side calls it (from hello), for messages. */
  agent?: string;
  /**
   * state is the id of the control side's state (from hello, checked against STATE_ID_RE). Every task
   * started records it, its host name carries stateSuffix(state), and lookups by task id find only
   * this state's task (or a legacy one that records no state). Absent: legacy names, nothing recorded.
   */
  state?: string;
}

/** stateSuffix is what a state adds to a task's host names (folder, container, domain): `_<first 8 hex of the id>`; '' without a state. */
export function stateSuffix(state: string | undefined): string {
  return state ? `_${state.slice(3, 11)}` : '';
}

/** Driver is one way of running tasks; every method reports failures as rejected FactoryErrors. */
export interface Driver {
  /** name is the driver's name as used in plans and TaskRunSpec.driver. */
  readonly name: DriverName;
  /** run starts the task, or adopts it when it already runs with the same specHash (idempotent). */
  run(spec: TaskRunSpec): Promise<TaskStatus>;
  /** stop stops the task (SIGTERM, grace, SIGKILL) and by default removes every trace of it. */
  stop(task: string, opts?: StopOptions): Promise<TaskStatus>;
  /** inspect reports every task of this driver found on the host. */
  inspect(): Promise<TaskStatus[]>;
  /** status reports one task, or undefined when the host has no trace of it. */
  status(task: string): Promise<TaskStatus | undefined>;
  /** logs sends the task's output to onData until done (or, with follow, until the signal aborts). */
  logs(task: string, opts: LogOptions, onData: (stream: 'stdout' | 'stderr', data: string) => void, signal: AbortSignal): Promise<void>;
  /** close, when present, ends what the driver holds open (a connection) when the executor exits; its tasks keep running. */
  close?(): Promise<void>;
}
