/**
 * The executor protocol: versioned JSON lines over a byte stream (a local child's stdin/stdout or an
 * SSH exec channel). The control side sends requests with an `id`; the executor answers each with a
 * `result` carrying the same id, and may send `heartbeat` and `log` messages at any time.
 *
 *   control → executor: hello, run, stop, inspect, logs, cancel, shutdown, image-inspect, image-load
 *   control → executor (VMs, src/protocol/vm.ts): vm-action, vm-image-has, vm-image-put, vm-image-commit, vm-images
 *   executor → control: register (answer to hello), result, heartbeat, log
 */
import type { Driver, TaskResources, TaskState } from '../scheduler/types.js';
import type { PowerState, VmAction, VmActionResult, VmImageInfo, VmImageManifest, VmRunOptions } from './vm.js';

/** PROTOCOL_VERSION is bumped on any incompatible change; both sides refuse a mismatch. */
export const PROTOCOL_VERSION = 1;

/**
 * DEFAULT_HEARTBEAT_MS is the heartbeat period when nobody chooses one: the control side asks for it
 * in hello when the inventory sets no `settings.heartbeat`, and the executor uses it when hello asks
 * for none.
 */
export const DEFAULT_HEARTBEAT_MS = 5000;

/** LimitsMode says how an agent enforces a process task's resource limits. */
export type LimitsMode = 'cgroup-v1' | 'cgroup-v2' | 'rlimit' | 'none';

/** TaskHealthCheck is a task's health check as the executor receives it (exactly one of http, tcp, command). */
export interface TaskHealthCheck {
  /** http is a path probed with GET on 127.0.0.1:port inside the task; 2xx/3xx is healthy. */
  http?: string;
  /** tcp: healthy when 127.0.0.1:port inside the task accepts a connection. */
  tcp?: boolean;
  /** command is an argv run inside the task; exit 0 is healthy. */
  command?: string[];
  port?: number;
  intervalMs: number;
}

/** TaskHealth is the last observed health of a task that has a health check. */
export type TaskHealth = 'starting' | 'healthy' | 'unhealthy';

/** RestartPolicy is a group's `restart`: when a dead or unhealthy task is started again. */
export type RestartPolicy = 'always' | 'on-failure' | 'never';

/** TaskLabels name a task's plan, group (a job's name for a run) and project, and for a job run its run id. */
export interface TaskLabels {
  plan: string;
  group: string;
  project: string;
  /** run is the id of the job run (`<plan>/<job>/<slot>`) the task is an attempt of. */
  run?: string;
}

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
  /** labels name the task's plan, group and project (and a job run's id); stored in the marker so it can be adopted. */
  labels: TaskLabels;
  /** stopGraceMs is how long a stop waits after SIGTERM before SIGKILL. */
  stopGraceMs: number;
  image?: string;
  /** vm carries the VM-only options (libvirt driver): subnet and shared volumes. */
  vm?: VmRunOptions;
  /** restart is the group's restart policy (drivers that restart on their own, like docker, honour it). */
  restart?: RestartPolicy;
  /** health is the group's health check (docker: the container's HEALTHCHECK; process: a prober beside the task). */
  health?: TaskHealthCheck;
  /**
   * once makes the task run-once (a job run): a task of that id that exists, running or ended, is
   * reported as it is and never started again, so a start sent twice runs it once.
   */
  once?: boolean;
  /**
   * notAfter (ms since the epoch, on the agent's clock: the control side adds the offset it measured
   * at hello) is the last moment a run-once start may begin. A start that reaches its driver later,
   * for a task that does not exist yet, is refused with E_TOO_LATE and nothing is started: a job's
   * slot is then missed, never run late behind a queue of earlier starts.
   */
  notAfter?: number;
}

/** TaskStatus is what an executor observes of one task on its host. */
export interface TaskStatus {
  task: string;
  driver: Driver;
  state: TaskState;
  specHash: string;
  labels: TaskLabels;
  pid?: number;
  exitCode?: number;
  signal?: string;
  startedAt?: string;
  finishedAt?: string;
  limits?: LimitsMode;
  /** error is set when the task could not start (e.g. the command does not exist). */
  error?: string;
  resources?: TaskResources;
  /** power is a VM's power state (libvirt driver only). */
  power?: PowerState;
  /** health is set for tasks with a health check (docker: the engine's; process: the driver's prober). */
  health?: TaskHealth;
  /** image is the container image of a docker task. */
  image?: string;
  /** containerId is the docker container's id (12 characters). */
  containerId?: string;
  /**
   * restarts counts the times the task's own runtime started it again in place after it ended
   * (docker: the engine's RestartCount under the container's restart policy); undefined for drivers
   * whose dead tasks only the control side restarts (process, libvirt).
   */
  restarts?: number;
  /**
   * stateId is the id of the factory state that started the task (`st-` + 12 hex); undefined for a
   * task started before tasks recorded it (legacy) or by a control side that sent no state.
   */
  stateId?: string;
}

/** ImageInfo answers image-inspect: whether the agent's engine has the image, and its id (sha256:…). */
export interface ImageInfo {
  image: string;
  present: boolean;
  id?: string;
}

/** ImageLoadResult answers image-load: bytes staged so far, and once done the loaded image's id. */
export interface ImageLoadResult {
  image: string;
  received: number;
  /** loaded is true on the final chunk, after the engine loaded the archive and its id matched. */
  loaded: boolean;
  id?: string;
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
  /** clock is the executor's Date.now() when it answered hello (the control side measures the agent's clock offset from it). */
  clock?: number;
}

/**
 * Calls is the executor protocol as one map: each call's request fields and what its result carries.
 * The request union, the client's typed `call()` and the executor's handler table are derived from
 * it, so a new call is one entry here, one handler and one client method (a missing handler fails
 * to compile, and test/executors/protocol-map.test.ts checks the table at run time).
 */
export interface Calls {
  /** hello: `state` is the control side's state id (STATE_ID_RE); the tasks this session starts record it. Answered by `register`. */
  hello: { req: { agent: string; workDir: string; heartbeatMs?: number; state?: string }; res: AgentRegistration };
  run: { req: { spec: TaskRunSpec }; res: TaskStatus };
  stop: { req: { task: string; graceMs?: number; remove?: boolean }; res: TaskStatus };
  inspect: { req: Record<never, never>; res: TaskStatus[] };
  /** logs streams `log` messages, then a result (follow: until cancelled). */
  logs: { req: { task: string; stream: 'stdout' | 'stderr' | 'both'; follow: boolean; tail?: number }; res: unknown };
  cancel: { req: { target: number }; res: { cancelled: boolean } };
  shutdown: { req: Record<never, never>; res: undefined };
  'vm-action': { req: { task: string; action: VmAction; imageName?: string; timeoutMs?: number }; res: VmActionResult };
  'vm-image-has': { req: { image: string }; res: { present: boolean } };
  'vm-image-put': { req: { image: string; file: string; offset: number; data: string }; res: { received: number } };
  'vm-image-commit': { req: { image: string; name: string; manifest: VmImageManifest }; res: { id: string; name: string } };
  'vm-images': { req: Record<never, never>; res: VmImageInfo[] };
  'image-inspect': { req: { image: string }; res: ImageInfo };
  /**
   * image-load ships a `docker save` archive in order: chunk `offset` (bytes so far) carries base64
   * `data`; the chunk with `done` makes the executor check `size` and `sha256` of the staged archive,
   * load it into the engine and compare the image's id with `imageId`.
   */
  'image-load': { req: { image: string; imageId: string; sha256: string; size: number; offset: number; data: string; done: boolean }; res: ImageLoadResult };
}

/** CallName is the name of one call of the executor protocol. */
export type CallName = keyof Calls;

const EVERY_CALL: Record<CallName, true> = {
  hello: true, run: true, stop: true, inspect: true, logs: true, cancel: true, shutdown: true, 'vm-action': true, 'vm-image-has': true,
  'vm-image-put': true, 'vm-image-commit': true, 'vm-images': true, 'image-inspect': true, 'image-load': true,
};

/** CALL_NAMES lists every call (at run time; the Record above makes it complete). */
export const CALL_NAMES = Object.keys(EVERY_CALL) as CallName[];

/** RequestBody is a call as the control side writes it: its type and its fields. */
export type RequestBody<K extends CallName = CallName> = { [N in K]: { type: N } & Calls[N]['req'] }[K];

/**
 * RequestOf is one call's request message. `epoch` is the leadership epoch of a control host on etcd
 * (its leader key's create revision): an executor refuses a call whose epoch is older than the newest
 * it has seen for the session's state (E_FENCED, executors/epoch-fence.ts); absent, nothing is checked.
 */
export type RequestOf<K extends CallName> = { v: number; id: number; epoch?: number } & RequestBody<K>;

/** Request is a message from the control side. */
export type Request = RequestOf<CallName>;

/** ResultOf is what a call's result carries. */
export type ResultOf<K extends CallName> = Calls[K]['res'];

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
