/**
 * The scheduler's vocabulary. Everything here is plain data: the scheduler takes a snapshot and the
 * desired state and returns a plan, with no I/O and no clock.
 */
import type { DriverName } from '../protocol/drivers.js';

/** ResourceVector is an amount of each schedulable resource. mem and disk are bytes; cpus may be fractional. */
export interface ResourceVector {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
  /** scalars are custom resources declared by agents, e.g. `{ssd: 800e9}`. */
  scalars: Record<string, number>;
}

/** TaskResources is what one task asks for: a ResourceVector plus the static host ports it binds. */
export interface TaskResources extends ResourceVector {
  ports: number[];
}

/** ConstraintOp is an attribute comparison operator of a placement constraint. */
export type ConstraintOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in' | '~';

/** Constraint is a parsed attribute constraint such as `rack != r9` or `zone in (a, b)`. */
export interface Constraint {
  attribute: string;
  op: ConstraintOp;
  /** value is a list for `in` / `not in`, a regex source for `~`, else a single string. */
  value: string | string[];
  /** source is the constraint as written in the plan, used in explanations. */
  source: string;
}

/** AgentState is the control side's view of an agent's health. */
export type AgentState = 'ready' | 'lost' | 'draining' | 'down';

/** AgentSnapshot is one agent as the scheduler sees it: capacity, attributes and health. */
export interface AgentSnapshot {
  name: string;
  idc: string;
  cluster: string;
  state: AgentState;
  /** capacity is the agent's total schedulable resources (declared merged with discovered). */
  capacity: ResourceVector;
  /** reserved is capacity taken by things factory does not manage (defaults to zero). */
  reserved?: Partial<ResourceVector>;
  attributes: Record<string, string>;
  /** drivers the agent's executor can run, e.g. ['process']. */
  drivers: string[];
}

/** Driver is how an executor runs a task (one of DRIVER_NAMES, src/protocol/drivers.ts). */
export type Driver = DriverName;

/** GroupKind is the plan section a group came from. */
export type GroupKind = 'process' | 'container' | 'vm';

/** Strategy is how feasible agents are scored: bin-pack fills agents, spread balances them. */
export type Strategy = 'binpack' | 'spread';

/** DesiredGroup is one plan group reduced to what scheduling needs. */
export interface DesiredGroup {
  plan: string;
  group: string;
  project: string;
  kind: GroupKind;
  driver: Driver;
  /** count of tasks; ignored when everyAgent is set. */
  count: number;
  everyAgent: boolean;
  maxPerAgent?: number;
  resources: TaskResources;
  constraints: Constraint[];
  /** specHash changes whenever anything that requires a restart changes. */
  specHash: string;
  strategy: Strategy;
  placement?: { idcs?: string[]; cluster?: string };
  /**
   * restart says which dead tasks apply starts again: `always` (default) any, `on-failure` all
   * but those that finished with exit 0, `never` none (a dead task is kept as it is).
   */
  restart?: 'always' | 'on-failure' | 'never';
  /**
   * total turns the group into a resource plan: VMs of `shapes` whose cpus add up to exactly
   * `total.cpus`, with the fewest VMs that fit (count and resources are then not used).
   */
  total?: { cpus: number };
  /** shapes are the VM sizes a resource plan may use (with `total`). */
  shapes?: VmShapeVector[];
  /**
   * roll, on a resource plan under a deployment (src/deploy/resource-roll.ts), replaces the
   * whole-group split for this pass: the tasks in `stop` stop, each VM of `start` is placed at its
   * index through the placement pipeline (the same rules as a counted task), the rest are kept.
   */
  roll?: ResourcePlanRoll;
}

/** ResourcePlanRoll is one step of a resource plan's deployment as the scheduler carries it out. */
export interface ResourcePlanRoll {
  /** stop names the old tasks to stop (one whose index a start takes is replaced in place: stopped only once that VM is placed). */
  stop: string[];
  /** start lists the new VMs to place: task index and shape. */
  start: { index: number; shape: VmShapeVector }[];
}

/** VmShapeVector is one VM size of a resource plan: mem and disk in bytes. */
export interface VmShapeVector {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
}

/** ProjectPolicy is a tenant's DRF weight, quota and pinned clusters (from the inventory's `projects`). */
export interface ProjectPolicy {
  /** weight divides the project's dominant share: weight 2 gets twice the share of weight 1. */
  weight: number;
  /** quota caps what the project's tasks may hold in total, per dimension. */
  quota?: Partial<ResourceVector>;
  /** clusters pins the project's groups to these clusters. */
  clusters?: string[];
}

/** GroupDecision is level 1 and level 2 for one group: where it went and, for a resource plan, how it was split. */
export interface GroupDecision {
  plan: string;
  group: string;
  project: string;
  /** idc and cluster chosen (empty when the group was placed nowhere). */
  idc: string;
  cluster: string;
  /** split is the resource plan, e.g. `[{cpus: 48, count: 4}, {cpus: 8, count: 1}]`. */
  split?: { cpus: number; mem: number; count: number }[];
  /** note says why the cluster was chosen, or why none could hold the whole group. */
  note?: string;
}

/** PlacementObserver is told about each placement decision as it is made (the bench times them); it must not throw. */
export interface PlacementObserver {
  /** decided is called once per request, placed or not. */
  decided(placed: boolean): void;
}

/** TaskState is the lifecycle state of a task as last observed. */
export type TaskState = 'pending' | 'running' | 'exited' | 'failed' | 'finished' | 'stopped' | 'lost' | 'unknown';

/** ActualTask is one task that exists (or existed) on an agent, as recorded and observed. */
export interface ActualTask {
  /** task id: `plan/group/index`. */
  task: string;
  plan: string;
  group: string;
  project: string;
  agent: string;
  driver: Driver;
  specHash: string;
  state: TaskState;
  resources: TaskResources;
  /**
   * restartHeld marks a dead task whose restart is not due yet (the control side's restart backoff,
   * src/control/restart-backoff.ts): it is kept as it is, not restarted or moved, in this pass.
   */
  restartHeld?: boolean;
}

/** PlacementReason says why a create is in the plan. */
export type PlacementReason = 'new' | 'restart' | 'update' | 'reschedule';

/** Placement is one task assigned to one agent. */
export interface Placement {
  task: string;
  plan: string;
  group: string;
  project: string;
  idc: string;
  cluster: string;
  agent: string;
  driver: Driver;
  specHash: string;
  resources: TaskResources;
  reason: PlacementReason;
}

/** StopReason says why a stop is in the plan. */
export type StopReason = 'removed' | 'scaled-down' | 'update' | 'destroy' | 'reschedule';

/** Stop is one existing task the plan stops. */
export interface Stop {
  task: ActualTask;
  reason: StopReason;
}

/** Unplaced is a task that could not be placed, with a human reason carrying counts per cause. */
export interface Unplaced {
  task: string;
  plan: string;
  group: string;
  project: string;
  reason: string;
  /** causes counts the agents excluded per cause, e.g. `{'mem': 7, 'constraint rack != r9': 3}`. */
  causes: Record<string, number>;
}

/** SchedulerInput is everything the scheduler needs; it must not need anything else. */
export interface SchedulerInput {
  agents: AgentSnapshot[];
  /** groups is the desired state of the plans being applied. */
  groups: DesiredGroup[];
  /** actual is every task that exists on any agent (from any plan). */
  actual: ActualTask[];
  /** plans are the plan names being applied: their tasks absent from `groups` are stopped. */
  plans: string[];
  /** seed makes tie-breaking deterministic. */
  seed: number;
  /** projects are the tenants' weights, quotas and pinned clusters (missing project: weight 1, no quota). */
  projects?: Record<string, ProjectPolicy>;
  /** observer, when given, is told about each decision (no effect on the plan). */
  observer?: PlacementObserver;
}

/** SchedulePlan is the scheduler's output: what to create, stop and keep, and what could not be placed. */
export interface SchedulePlan {
  create: Placement[];
  stop: Stop[];
  keep: ActualTask[];
  unplaced: Unplaced[];
  /** changes counts tasks: an update (stop + create of the same task id) counts once as update. */
  changes: { create: number; destroy: number; update: number };
  /** stranded is, per dimension, free capacity left on ready agents where no task shape of the pass fits. */
  stranded: Record<string, number>;
  /** groups holds the level-1/level-2 decision of every group that needed placing, by plan and group. */
  groups: GroupDecision[];
}
