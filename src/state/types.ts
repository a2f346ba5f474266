/**
 * The shape of the state file. It records what factory believes runs where; the agents are the
 * truth, and every apply and status refreshes this from what they report.
 */
import type { AgentState, TaskResources, TaskState, Driver } from '../scheduler/types.js';
import type { LimitsMode, TaskHealth } from '../protocol/messages.js';
import type { PowerState } from '../protocol/vm.js';

import type { PlanSpec } from '../spec/model.js';

/** STATE_VERSION is the schema version written in every state file. */
export const STATE_VERSION = 1;

/** AgentRecord is what the state keeps about an agent. */
export interface AgentRecord {
  name: string;
  idc: string;
  cluster: string;
  state: AgentState;
  /** resources are the effective capacity (declared merged over discovered). */
  resources: { cpus: number; mem: number; disk: number; gpus: number; scalars: Record<string, number> };
  discovered?: { cpus: number; mem: number; disk: number; gpus: number; scalars: Record<string, number> };
  attributes: Record<string, string>;
  drivers: Driver[];
  limits?: LimitsMode;
  lastSeen?: string;
  error?: string;
  /** draining is set by `factory agents drain`: nothing new lands here and apply moves its tasks away. */
  draining?: boolean;
  /** drainingSince is when the drain was recorded. */
  drainingSince?: string;
}

/** TaskRecord is what the state keeps about a task. */
export interface TaskRecord {
  task: string;
  plan: string;
  group: string;
  project: string;
  agent: string;
  driver: Driver;
  specHash: string;
  state: TaskState;
  resources: TaskResources;
  pid?: number;
  exitCode?: number;
  signal?: string;
  limits?: LimitsMode;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  /** power is a VM task's power state (running, shut off, paused, crashed, imaging). */
  power?: PowerState;
  /** health is the last observed health of a task with a health check. */
  health?: TaskHealth;
  /** image is a container task's image. */
  image?: string;
  updatedAt: string;
}

/** PlanRecord remembers an applied plan, so `status` can name it and destroy knows its tasks. */
export interface PlanRecord {
  name: string;
  project: string;
  file: string;
  appliedAt: string;
  /** spec is the plan as applied: what a control host keeps converging to (set by applies since it was added). */
  spec?: PlanSpec;
  /** inventory is the absolute path of the inventory it was applied with; absent for the embedded default. */
  inventory?: string;
}

/** EventRecord is one thing that happened (task started, failed, restarted; plan applied). */
export interface EventRecord {
  at: string;
  kind: string;
  task?: string;
  agent?: string;
  message: string;
}

/** StateData is the whole state document. */
export interface StateData {
  version: number;
  agents: Record<string, AgentRecord>;
  tasks: Record<string, TaskRecord>;
  plans: Record<string, PlanRecord>;
  events: EventRecord[];
}
