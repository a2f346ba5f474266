/**
 * The validated, normalized form of plans and inventories: what the rest of factory consumes.
 * src/spec/load.ts and src/spec/inventory.ts produce these from YAML; nothing downstream sees raw YAML.
 */
import type { Constraint, Driver, GroupKind, ResourceVector, Strategy, TaskResources } from '../scheduler/types.js';
import type { SpecIssue } from '../errors.js';
import type { SshTarget } from '../transport/ssh/index.js';
import type { JobSpec } from '../jobs/types.js';

/** HealthSpec is a task health check (used by drivers that support it). */
export interface HealthSpec {
  http?: string;
  tcp?: boolean;
  command?: string[];
  port?: number;
  intervalMs: number;
}

/**
 * UpdateSettings is an `update` block as written (a group's, a plan's default or the inventory's
 * `settings.update`): every field optional; src/spec/update.ts fills in the defaults.
 */
export interface UpdateSettings {
  /** maxParallel is how many tasks are replaced at once. */
  maxParallel?: number;
  /** maxSurge is how many extra tasks may run while replacing (above count). */
  maxSurge?: number;
  /** minHealthyTimeMs is how long a new task must stay healthy to count. */
  minHealthyTimeMs?: number;
  /** healthyDeadlineMs is when a new task not yet counted healthy counts failed (from its start). */
  healthyDeadlineMs?: number;
  /** progressDeadlineMs fails a deployment in which no new task became healthy for this long (0: none). */
  progressDeadlineMs?: number;
  /** autoRevert returns a failed deployment's group to the spec it replaced. */
  autoRevert?: boolean;
  /** canary is how many new tasks start beside the old ones before the rest, awaiting promotion. */
  canary?: number;
  /** autoPromote promotes the canaries once they are healthy. */
  autoPromote?: boolean;
}

/** UpdatePolicy is a group's update block with every default applied. */
export type UpdatePolicy = Required<UpdateSettings>;

/**
 * RestartBackoffSpec is how a group's dead tasks are restarted when they die again and again: the
 * first restart of a loop is at once, the n-th waits initialMs × factor^(n-2), capped at maxMs
 * (src/control/restart-backoff.ts does the arithmetic and the reset).
 */
export interface RestartBackoffSpec {
  initialMs: number;
  factor: number;
  maxMs: number;
}

/** VmShape is one allowed VM size of a resource plan (`total` + `shapes`). */
export interface VmShape {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
}

/** GroupSpec is one validated group of a plan. */
export interface GroupSpec {
  name: string;
  kind: GroupKind;
  driver: Driver;
  count: number;
  everyAgent: boolean;
  maxPerAgent?: number;
  resources: TaskResources;
  constraints: Constraint[];
  strategy: Strategy;
  /** command is an argv (processes, optional for containers). */
  command?: string[];
  env: Record<string, string>;
  workingDir?: string;
  image?: string;
  /** stopGraceMs is how long to wait after SIGTERM before SIGKILL. */
  stopGraceMs: number;
  restart: 'always' | 'on-failure' | 'never';
  /** restartBackoff spaces the restarts of a task that keeps dying (absent in plans recorded before it existed: the defaults). */
  restartBackoff?: RestartBackoffSpec;
  health?: HealthSpec;
  /** update is the group's own update block (the plan's and the inventory's defaults fill the rest). */
  update?: UpdateSettings;
  /** total and shapes: a VM resource plan (split `total` into VMs of these shapes). */
  total?: { cpus: number };
  shapes?: VmShape[];
  subnet?: string;
  volumes?: string[];
  /** line and col of the group in its file, for messages about the group. */
  line: number;
  col: number;
}

/** PlanSpec is one validated plan file. */
export interface PlanSpec {
  /** file is the path the plan was read from (as given), for messages. */
  file: string;
  name: string;
  project: string;
  placement?: { idcs?: string[]; cluster?: string };
  /** update is the plan's default update block for its groups. */
  update?: UpdateSettings;
  groups: GroupSpec[];
  /** jobs are the plan's scheduled jobs (run by the control host; absent when the plan has none). */
  jobs?: JobSpec[];
  /** warnings are valid but not-yet-acted-on parts of the plan. */
  warnings: SpecIssue[];
}

/** InventorySettings tunes how agents are reached (all optional; see schema for defaults). */
export interface InventorySettings {
  connectTimeoutMs?: number;
  callTimeoutMs?: number;
  heartbeatMs?: number;
  lostAfter?: number;
  concurrency?: number;
  knownHostsFile?: string;
  hostKeyPolicy?: 'strict' | 'accept-new';
  /** update is the default update block of the groups applied with this inventory. */
  update?: UpdateSettings;
}

/** AgentSpec is one agent of the inventory. */
export interface AgentSpec {
  name: string;
  idc: string;
  cluster: string;
  /** transport: `local` runs the executor as a child process; `ssh` over an SSH exec channel. */
  transport: { kind: 'local' } | ({ kind: 'ssh' } & SshTarget);
  /** resources declared in the inventory; declared values win over discovered ones. */
  resources: Partial<ResourceVector>;
  attributes: Record<string, string>;
  /** drivers declared for the agent (offline what-if); discovery tells the truth online. */
  drivers?: Driver[];
  /** workDir is where the executor keeps task folders on the agent. */
  workDir?: string;
}

/** ProjectSpec is a tenant's share, quota and cluster pinning. */
export interface ProjectSpec {
  weight: number;
  quota?: Partial<ResourceVector>;
  clusters?: string[];
}

/** InventorySpec is a validated inventory: IDCs, clusters, agents and projects. */
export interface InventorySpec {
  /** file is the path read, or `(embedded default)`. */
  file: string;
  agents: AgentSpec[];
  idcs: { name: string; clusters: string[] }[];
  projects: Record<string, ProjectSpec>;
  /** settings tune agent connections (timeouts, heartbeats, fan-out, host keys). */
  settings?: InventorySettings;
}
