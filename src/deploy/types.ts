/**
 * The records of deployments (src/state's `deployments` table, one record per deployment, keyed by
 * its id): what a deployment rolls (a group, from one spec hash to another), how (its update policy),
 * where it stands (status, each new task's progress) and the old spec a revert returns to.
 */
import type { GroupSpec, UpdatePolicy, VmShape } from '../spec/model.js';

/** DeploymentStatus is where a deployment stands; the last four are final. */
export type DeploymentStatus = 'running' | 'paused' | 'waiting-promotion' | 'succeeded' | 'failed' | 'reverted' | 'aborted';

/** FINAL_STATUSES are the statuses a deployment never leaves. */
export const FINAL_STATUSES: ReadonlySet<DeploymentStatus> = new Set<DeploymentStatus>(['succeeded', 'failed', 'reverted', 'aborted']);

/** isActive says whether a deployment still owns its group's rollout (running, paused or waiting for promotion). */
export function isActive(d: Pick<DeploymentRecord, 'status'>): boolean {
  return !FINAL_STATUSES.has(d.status);
}

/** newestFirst orders deployments as `deploy list` lists them: the newest first (by creation, then id). */
export function newestFirst(a: Pick<DeploymentRecord, 'createdAt' | 'id'>, b: Pick<DeploymentRecord, 'createdAt' | 'id'>): number {
  return a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1;
}

/** DeploymentTaskState is one new task's progress: started, counted healthy, or failed. */
export type DeploymentTaskState = 'pending' | 'healthy' | 'failed';

/** DeploymentTask is the progress of one task on the new spec. */
export interface DeploymentTask {
  /** task is the task id (`plan/group/index`). */
  task: string;
  state: DeploymentTaskState;
  /** startedAt is when the task on the new spec started (as its agent reported it, else when first seen). */
  startedAt: string;
  /** healthySince is when its health was last seen turning good (cleared when it turns bad). */
  healthySince?: string;
  /** healthyAt is when it counted healthy (healthy for minHealthyTime). */
  healthyAt?: string;
  /** canary marks a canary (started beside the old tasks before the promotion). */
  canary?: boolean;
  /** restarts is the task's count of in-place restarts by its own runtime (docker) when the step first saw it: one more is a death. */
  restarts?: number;
  /** error says why it failed. */
  error?: string;
}

/** SplitVm is one VM of a resource plan's new split (src/deploy/resource-roll.ts): its shape, and its task index once it was started. */
export interface SplitVm extends VmShape {
  /** index is the task index the VM was started at (absent: not started yet); it never changes. */
  index?: number;
}

/** DeploymentRecord is one deployment: a group rolled from one spec to another. */
export interface DeploymentRecord {
  /** id is `dep-` + 10 hex. */
  id: string;
  plan: string;
  group: string;
  project: string;
  /** fromHash is the spec hash the old tasks run; toHash the one the deployment rolls to. */
  fromHash: string;
  toHash: string;
  /** fromSpec is the group as it was applied before (absent when the state had no record of it): what a revert restores. */
  fromSpec?: GroupSpec;
  /** toSpec is the group as this deployment applies it. */
  toSpec: GroupSpec;
  /** policy is the update policy it follows (the group's, its plan's and its inventory's update blocks merged). */
  policy: UpdatePolicy;
  status: DeploymentStatus;
  /** message says why it is where it is (the failed task, the deadline, who promoted, what superseded it). */
  message?: string;
  /** promoted is set once its canaries were promoted (or when it has none). */
  promoted: boolean;
  /** tasks is the progress of each task started on the new spec, by task id order. */
  tasks: DeploymentTask[];
  /** old counts the tasks still on another spec at the last step. */
  old: number;
  /** unplaced says which new tasks could not be placed at the last step, and why. */
  unplaced?: { task: string; reason: string }[];
  /** split is a resource plan's new VMs, largest first, computed once at its first step (absent for counted groups). */
  split?: SplitVm[];
  /** batchCpus is a resource plan's batch: the cpus of its maxParallel largest old VMs at the first step. */
  batchCpus?: number;
  /** surgeCpus is a resource plan's room above its total while rolling: the cpus of its maxSurge largest old VMs (0 without surge). */
  surgeCpus?: number;
  /** revertOf is the deployment this one reverts; revertedBy the one that reverts this one. */
  revertOf?: string;
  revertedBy?: string;
  createdAt: string;
  updatedAt: string;
  /** progressAt is when a new task last counted healthy (or the start): the progress deadline counts from it. */
  progressAt: string;
  finishedAt?: string;
  /** by is who started it (a token id, local:<user>, control-host). */
  by?: string;
}
