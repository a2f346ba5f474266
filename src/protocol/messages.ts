/**
 * The executor protocol: versioned JSON lines over a byte stream (a local child's stdin/stdout or an
 * SSH exec channel). The control side sends requests with an `id`; the executor answers each with a
 * `result` carrying the same id, and may send `heartbeat` and `log` messages at any time.
 *
 *   control → executor: hello, run, stop, inspect, logs, cancel, shutdown
 *   executor → control: register (answer to hello), result, heartbeat, log
 */
import type { Driver, TaskResources, TaskState } from '../scheduler/types.js';

/** PROTOCOL_VERSION is bumped on any incompatible change; both sides refuse a mismatch. */
export const PROTOCOL_VERSION = 1;

/** LimitsMode says how an agent enforces a process task's resource limits. */
export type LimitsMode = 'cgroup-v1' | 'cgroup-v2' | 'rlimit' | 'none';

/** TaskRunSpec is everything an executor needs to start (or adopt) one task. */
export interface TaskRunSpec {
  /** task id `plan/group/index`. */
  task: string;
  driver: Driver;
  specHash: string;
  /** command is an argv: it is executed directly, never pasted into a shell string. */
  command: string[];
  env: Record<string, string>;
  workingDir?: string;
  resources: TaskResources;
  /** labels name the task's plan, group and project; stored in the marker so it can be adopted. */
  labels: { plan: string; group: string; project: string };
  /** stopGraceMs is how long a stop waits after SIGTERM before SIGKILL. */
  stopGraceMs: number;
  image?: string;
}

/** TaskStatus is what an executor observes of one task on its host. */
export interface TaskStatus {
  task: string;
  driver: Driver;
  state: TaskState;
  specHash: string;
  labels: { plan: string; group: string; project: string };
  pid?: number;
  exitCode?: number;
  signal?: string;
  startedAt?: string;
  finishedAt?: string;
  limits?: LimitsMode;
  /** error is set when the task could not start (e.g. the command does not exist). */
  error?: string;
  resources?: TaskResources;
}

/** AgentRegistration is what an executor discovers about its host and reports on hello. */
export interface AgentRegistration {
  executorVersion: string;
  protocol: number;
  hostname: string;
  resources: { cpus: number; mem: number; disk: number; gpus: number; scalars: Record<string, number> };
  attributes: Record<string, string>;
  drivers: Driver[];
  limits: LimitsMode;
  workDir: string;
  tasks: TaskStatus[];
}

/** Request is a message from the control side. */
export type Request =
  | { v: number; id: number; type: 'hello'; agent: string; workDir: string; heartbeatMs?: number }
  | { v: number; id: number; type: 'run'; spec: TaskRunSpec }
  | { v: number; id: number; type: 'stop'; task: string; graceMs?: number; remove?: boolean }
  | { v: number; id: number; type: 'inspect' }
  | { v: number; id: number; type: 'logs'; task: string; stream: 'stdout' | 'stderr' | 'both'; follow: boolean; tail?: number }
  | { v: number; id: number; type: 'cancel'; target: number }
  | { v: number; id: number; type: 'shutdown' };

/** ErrorBody is the error half of a failed result. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** Message is a message from the executor. */
export type Message =
  | { v: number; id: number; type: 'register'; agent: AgentRegistration }
  | { v: number; id: number; type: 'result'; ok: true; data?: unknown }
  | { v: number; id: number; type: 'result'; ok: false; error: ErrorBody }
  | { v: number; type: 'heartbeat'; seq: number; at: string; tasks: TaskStatus[] }
  | { v: number; id: number; type: 'log'; stream: 'stdout' | 'stderr'; data: string };
