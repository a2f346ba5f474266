/**
 * The shape of the state file. It records what factory believes runs where; the agents are the
 * truth, and every apply and status refreshes this from what they report.
 */
import type { AgentState, TaskResources, TaskState, Driver } from '../scheduler/types.js';
import type { LimitsMode, TaskHealth } from '../protocol/messages.js';
import type { PowerState } from '../protocol/vm.js';

import type { PlanSpec } from '../spec/model.js';

import type { EventRecord } from './backend.js';
export type { EventRecord } from './backend.js';

/** STATE_VERSION is the schema version of the snapshot file (version 1 was one document rewritten whole). */
export const STATE_VERSION = 2;

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
  /** foreign lists tasks on this agent that another state started: shown, never adopted or stopped. */
  foreign?: ForeignTask[];
}

/** ForeignTask is a task another state (its id) runs on an agent of ours. */
export interface ForeignTask {
  task: string;
  state: string;
  driver: string;
  taskState: string;
  pid?: number;
  /** resources are what the task asked for (a live foreign task takes them from the agent's free capacity). */
  resources?: TaskResources;
}

/**
 * RestartBackoffRecord is where a task stands in a crash loop (src/control/restart-backoff.ts): kept
 * in the state so that a new control host goes on where the last one was.
 */
export interface RestartBackoffRecord {
  /** restarts counts the control side's restarts of the task since it last stayed up long enough. */
  restarts: number;
  /** since is when the loop began (its first death was noted). */
  since: string;
  /** lastRestartAt is when the control side last restarted it. */
  lastRestartAt?: string;
  /** diedAt is when the death being waited on happened (set, with delayMs and nextAt, while the task is dead). */
  diedAt?: string;
  /** delayMs is this step's wait: the restart is due at diedAt + delayMs. */
  delayMs?: number;
  /** nextAt is when the next restart is due. */
  nextAt?: string;
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
  /** restarts counts the in-place restarts by the task's own runtime (docker's RestartCount), when its driver has any. */
  restarts?: number;
  /** backoff is the task's restart backoff: absent until it dies, dropped once it stays up (or its spec changes). */
  backoff?: RestartBackoffRecord;
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
  /** inventoryText is the inventory as applied, when it was sent rather than read from the host's disk. */
  inventoryText?: string;
  /** appliedBy is who applied it (a token id or local:<user>). */
  appliedBy?: string;
}

/** TokenScope orders what a token may do: read < write < admin. */
export type TokenScope = 'read' | 'write' | 'admin';

/** TokenRecord is an API token: only the SHA-256 of its secret is kept. */
export interface TokenRecord {
  /** id is the public part (fct_<12 hex>), shown in lists and events. */
  id: string;
  /** hash is the hex SHA-256 of the whole token. */
  hash: string;
  scope: TokenScope;
  /** project limits the token to one project's plans, tasks, logs and events; absent: every project. */
  project?: string;
  createdAt: string;
  createdBy: string;
  description?: string;
}

/** StateData is the snapshot file's document (and the shape of a version 1 state file, without id, rev and tokens). */
export interface StateData {
  version: number;
  /** id names the state (absent in version 1). */
  id?: string;
  /** rev is the revision the snapshot holds; the journal holds what came after. */
  rev?: number;
  agents: Record<string, AgentRecord>;
  tasks: Record<string, TaskRecord>;
  plans: Record<string, PlanRecord>;
  tokens?: Record<string, TokenRecord>;
  events: EventRecord[];
}
