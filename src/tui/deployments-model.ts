/**
 * The deployments view's data: each deployment of the state's `deployments` table (src/deploy) as the
 * dashboard shows it — where it stands, its old / new / healthy counts as `factory deploy list`
 * counts them (deploymentCounts), its policy in words, each new task's progress — newest first. A
 * state file's table becomes this in the state worker (DeploymentTables); a control host lists it
 * (GET /v1/deployments, api-source.ts). Also its filter and the header's counts. No React; nothing
 * but the pure deploy modules is imported (the worker loads this).
 */
import { deploymentCounts, describePolicy } from '../deploy/describe.js';
import { isActive, newestFirst, type DeploymentRecord, type DeploymentStatus, type DeploymentTask } from '../deploy/types.js';
import { matchingEveryWord } from './search.js';

/** DeploymentView is one deployment as the dashboard shows it (the record without its two group specs). */
export interface DeploymentView {
  id: string;
  plan: string;
  group: string;
  project: string;
  status: DeploymentStatus;
  /** message says why it is where it is (the failed task, the deadline, who promoted, what superseded it). */
  message?: string;
  /** old, new and healthy are `deploy list`'s counts: tasks on the old spec, tasks started on the new one (not failed), those counted healthy. */
  old: number;
  new: number;
  healthy: number;
  /** count is the group's task count on the new spec (the rollout is done when that many count healthy). */
  count: number;
  /** policy is the update policy in words (`2 at a time, 1 extra, healthy for 1s, …`). */
  policy: string;
  /** canary is the number of canaries (0: none); promoted is set once they were promoted (or when there are none). */
  canary: number;
  promoted: boolean;
  /** tasks are the new tasks' progress, by task id. */
  tasks: DeploymentTask[];
  unplaced?: { task: string; reason: string }[];
  revertOf?: string;
  revertedBy?: string;
  fromHash: string;
  toHash: string;
  createdAt: string;
  progressAt: string;
  finishedAt?: string;
  by?: string;
}

/** NO_DEPLOYMENTS is a state without deployments. */
export const NO_DEPLOYMENTS: readonly DeploymentView[] = Object.freeze([]);

/** DeploymentTableRecords is the deployments table of a state document (absent in states written before deployments). */
export interface DeploymentTableRecords {
  deployments?: Record<string, DeploymentRecord>;
}

/** DEPLOYMENTS_TABLE is the state document's key of the deployments table. */
export const DEPLOYMENTS_TABLE = 'deployments';

/** deploymentViewOf is a deployment record as the view shows it. */
export function deploymentViewOf(d: DeploymentRecord): DeploymentView {
  const c = deploymentCounts(d);
  const v: DeploymentView = {
    id: d.id, plan: d.plan, group: d.group, project: d.project, status: d.status,
    old: c.old, new: c.new, healthy: c.healthy, count: d.toSpec?.count ?? 0,
    policy: d.policy ? describePolicy(d.policy) : '', canary: d.policy?.canary ?? 0, promoted: d.promoted,
    tasks: d.tasks ?? [], fromHash: d.fromHash, toHash: d.toHash, createdAt: d.createdAt, progressAt: d.progressAt,
  };
  if (d.message) v.message = d.message;
  if (d.unplaced?.length) v.unplaced = d.unplaced;
  if (d.revertOf) v.revertOf = d.revertOf;
  if (d.revertedBy) v.revertedBy = d.revertedBy;
  if (d.finishedAt) v.finishedAt = d.finishedAt;
  if (d.by) v.by = d.by;
  return v;
}

/** deploymentsOf is the view's list from deployment records: newest first, as `deploy list` orders them. */
export function deploymentsOf(records: Iterable<DeploymentRecord>): readonly DeploymentView[] {
  const list = [...records];
  if (list.length === 0) return NO_DEPLOYMENTS;
  return list.sort(newestFirst).map(deploymentViewOf);
}

/**
 * DeploymentTables collects a state's deployments record by record (a repeated key replaces the
 * earlier record, as JSON.parse does), for a reader that never holds the whole document.
 */
export class DeploymentTables {
  private readonly byKey = new Map<string, DeploymentRecord>();

  /** add records one member of the deployments table. */
  add(key: string, rec: unknown): void {
    this.byKey.set(key, rec as DeploymentRecord);
  }

  /** finish returns the view's list. */
  finish(): readonly DeploymentView[] {
    return deploymentsOf(this.byKey.values());
  }
}

/** noteOf is a deployment's NOTE cell: the command its healthy canaries wait for, the revert it is or underwent, else its message. */
export function noteOf(d: DeploymentView): string {
  if (d.status === 'waiting-promotion') return `factory deploy promote ${d.id}`;
  if (d.revertOf) return `revert of ${d.revertOf}${d.message ? `: ${d.message}` : ''}`;
  if (d.revertedBy) return `reverted by ${d.revertedBy}${d.message ? `: ${d.message}` : ''}`;
  return d.message ?? '';
}

/** deploymentSearch is the lowercased text the filter matches: id, plan/group, project, status, the note, `canary`, `active`. */
function deploymentSearch(d: DeploymentView): string {
  return [d.id, `${d.plan}/${d.group}`, d.project, d.status, noteOf(d), d.canary ? 'canary' : '', isActive(d) ? 'active' : ''].join(' ').toLowerCase();
}

/** deploymentsMatching returns the deployments whose search text holds every word of the query (the list itself when there is none). */
export function deploymentsMatching(list: readonly DeploymentView[], query: string): readonly DeploymentView[] {
  return matchingEveryWord(list, query, deploymentSearch);
}

/** DeploymentsTotals are the header's counts: deployments in progress, and of them those paused or waiting for promotion. */
export interface DeploymentsTotals {
  active: number;
  paused: number;
  waiting: number;
}

/** deploymentsTotals counts the deployments in progress for the header. */
export function deploymentsTotals(list: readonly DeploymentView[]): DeploymentsTotals {
  const t: DeploymentsTotals = { active: 0, paused: 0, waiting: 0 };
  for (const d of list) {
    if (!isActive(d)) continue;
    t.active++;
    if (d.status === 'paused') t.paused++;
    if (d.status === 'waiting-promotion') t.waiting++;
  }
  return t;
}
