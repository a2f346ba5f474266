/**
 * The contract between the HTTP API (src/api) and the control operations (src/control). The API
 * layer never imports src/control: every operation it runs goes through a ControlApi, implemented
 * in one place (services.ts), so the control side can change its signatures (state backend instead
 * of a state directory) behind it.
 */
import type { ApplyResult, DiffResult } from '../control/plan.js';
import type { StatusResult } from '../control/status.js';
import type { RestartTaskResult } from '../control/tasks.js';
import type { VmActionView } from '../control/vms.js';
import type { DrainResult } from '../control/drain.js';
import type { JobView } from '../control/jobs.js';
import type { RunRecord } from '../jobs/types.js';
import type { DeploymentRecord } from '../deploy/types.js';
import type { OperatorAction } from '../deploy/operator.js';
import type { PlanSpec } from '../spec/model.js';
import type { TokenScope } from '../state/types.js';

export type { ApplyResult, DiffResult, DrainResult, JobView, RestartTaskResult, RunRecord, StatusResult, VmActionView };

/** Caller is who sent a request: a token, or the same user on the unix socket. */
export interface Caller {
  /** id is the token id (fct_<12 hex>) or `local:<user>`; it is what events record as `by`. */
  id: string;
  scope: TokenScope;
  /** project limits the caller to one project's plans, tasks, logs and events. */
  project?: string;
  /** local is true on the unix socket (same-user trust). */
  local: boolean;
}

/** OpContext comes with every operation: who asks, where progress goes, and when to give up. */
export interface OpContext {
  /** by is the caller's id, recorded in the events the operation writes. */
  by: string;
  /** requestId is the request's x-request-id (for logs). */
  requestId: string;
  /** progress receives one human line per step (streamed to the client as {"progress": ...}). */
  progress?: (line: string) => void;
  /** signal aborts when the client went away (a long operation may stop early; a started write may not). */
  signal?: AbortSignal;
}

/** SpecDocument is one YAML document sent in a request; `file` is the name it is reported under. */
export interface SpecDocument {
  file: string;
  text: string;
}

/** PlanDocuments are the plans (parsed by the API with loadPlanText, positions in the sent names) and the sent texts. */
export interface PlanDocuments {
  plans: PlanSpec[];
  /** texts are the documents as sent, in the order of plans. */
  texts: SpecDocument[];
  /** inventory is the inventory as sent; absent: the host's inventory. */
  inventory?: SpecDocument;
  /** offline (diff only) uses declared capacities without asking the agents. */
  offline?: boolean;
  seed?: number;
}

/** LogsRequest selects a task's output. */
export interface LogsRequest {
  task: string;
  follow: boolean;
  tail?: number;
  stream: 'stdout' | 'stderr' | 'both';
  onData: (stream: 'stdout' | 'stderr', chunk: string) => void;
}

/** VmPowerAction is what POST /v1/vms/:task/:action may ask. */
export type VmPowerAction = 'start' | 'stop' | 'reboot' | 'force-off';

/** ControlApi is every control operation the HTTP API runs. */
export interface ControlApi {
  /**
   * status asks the agents (unless cached) and returns agents, tasks and recent events; with readOnly
   * (why this host must not write: a follower on etcd) it records nothing and stops no stray.
   */
  status(opts: { cached: boolean; events?: number; readOnly?: string }, ctx: OpContext): Promise<StatusResult>;
  /** restartTask restarts one task (its full id) where it runs. */
  restartTask(task: string, ctx: OpContext): Promise<RestartTaskResult>;
  /** logs streams a task's output until it ends (follow: until ctx.signal aborts). */
  logs(req: LogsRequest, ctx: OpContext): Promise<void>;
  /** drain marks an agent draining (undo: clears it) and re-applies the recorded plans. */
  drain(agent: string, opts: { undo: boolean }, ctx: OpContext): Promise<DrainResult>;
  diffPlans(docs: PlanDocuments, ctx: OpContext): Promise<DiffResult>;
  applyPlans(docs: PlanDocuments, ctx: OpContext): Promise<ApplyResult>;
  destroyPlans(docs: PlanDocuments, ctx: OpContext): Promise<ApplyResult>;
  vmAction(task: string, action: VmPowerAction, ctx: OpContext): Promise<VmActionView>;
  /** runJob starts a run of a job now, outside its schedule (concurrency applies unless force); needs the host's scheduler of runs. */
  runJob(job: string, opts: { force: boolean }, ctx: OpContext & { project?: string }): Promise<RunRecord>;
  /** suspendJob suspends (or, suspend false, resumes) a job. */
  suspendJob(job: string, suspend: boolean, ctx: OpContext & { project?: string }): Promise<JobView>;
  /** runLogs streams a run's output from its agent (follow: until the run ends or ctx.signal aborts). */
  runLogs(req: Omit<LogsRequest, 'task'> & { run: string }, ctx: OpContext & { project?: string }): Promise<void>;
  /** promoteDeployment promotes a deployment's canaries (its id or a unique prefix). */
  promoteDeployment(id: string, ctx: OpContext & { project?: string }): Promise<DeploymentRecord>;
  /** operateDeployment pauses, resumes, aborts or reverts a deployment (its id or a unique prefix); a revert returns the reverted record (its revertedBy names the revert). */
  operateDeployment(id: string, action: OperatorAction, ctx: OpContext & { project?: string }): Promise<DeploymentRecord>;
}
