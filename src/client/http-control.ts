/**
 * HttpControl runs the control operations of the CLI's commands on a control host, over its HTTP
 * API (src/api/app.ts, `/v1`), and answers with the same result objects the local operations
 * return: the commands render them the same way whichever ran them.
 *
 * Plan files are read here, in the client's directory, and sent as texts under names the API
 * accepts (relative, no `..`); the names in what comes back (spec issues, warnings, the plans'
 * files, a sent inventory) are mapped back to the paths the user gave, so errors print as a local
 * run prints them (`file:line:col`).
 */
import path from 'node:path';
import { FactoryError, SpecError, type SpecIssue } from '../errors.js';
import { expandPlanPaths, readSpecFile } from '../spec/read.js';
import type { ApplyResult, DiffResult } from '../control/plan.js';
import type { ControlStatus } from '../control/control-status.js';
import type { StatusResult } from '../control/status.js';
import type { RestartTaskResult } from '../control/tasks.js';
import type { VmActionView } from '../control/vms.js';
import type { DrainResult } from '../control/drain.js';
import type { JobView } from '../control/jobs.js';
import { resolveJobName, type RunRecord } from '../jobs/types.js';
import type { DeploymentRecord } from '../deploy/types.js';
import type { OperatorAction } from '../deploy/operator.js';
import type { EventRecord } from '../state/backend.js';
import type { ApiClient } from './http.js';

/** LONG_CALL_MS bounds calls that run a long operation as one JSON answer (drain, vm power, restart). */
const LONG_CALL_MS = 10 * 60_000;

/** PlanRequest is what a plan command sends. */
export interface PlanRequest {
  /** paths are the plan files or folders as given on the command line. */
  paths: string[];
  /** inventory is a local inventory file to send (absent: the host's inventory). */
  inventory?: string;
  offline?: boolean;
  seed?: number;
  progress?: (line: string) => void;
}

/** LogStreamRequest is how to stream a task's or a run's output: which streams, how much, whether to follow, and where it goes. */
export interface LogStreamRequest {
  follow: boolean;
  /** tail is the last N lines of each stream to start with (absent: all). */
  tail?: number;
  stream: 'stdout' | 'stderr' | 'both';
  onData: (stream: 'stdout' | 'stderr', chunk: string) => void;
  /** signal ends a followed stream (the call then resolves). */
  signal?: AbortSignal;
}

/** TokenView is a token's record as the API lists it (never its secret). */
export interface TokenView {
  id: string;
  scope: 'read' | 'write' | 'admin';
  project?: string;
  description?: string;
  createdAt?: string;
  createdBy?: string;
}

/** SENT_NAME is what the API accepts as a document's name. */
const SENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;

/** sentName is the name a local file travels under: its relative path when the API accepts it, else a cleaned base name. */
export function sentName(file: string, taken: Set<string>): string {
  const rel = path.isAbsolute(file) ? '' : path.normalize(file).split(path.sep).join('/').replace(/^\.\//, '');
  let name = rel && SENT_NAME.test(rel) && rel.length <= 255 ? rel : path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9_]+/, '').slice(-200) || 'plan.yaml';
  if (taken.has(name)) {
    let i = 2;
    while (taken.has(`${i}/${name}`)) i++;
    name = `${i}/${name}`;
  }
  taken.add(name);
  return name;
}

/** Names maps the names documents were sent under back to the paths the user gave. */
class Names {
  readonly back = new Map<string, string>();
  /** inventory is the local inventory that was sent: the host names it by where it kept it. */
  inventory?: string;

  add(local: string, sent: string): void {
    this.back.set(sent, local);
  }

  /** file maps one name back (unknown names stay). */
  file(name: string): string {
    if (this.inventory && /(^|\/)api-plans\/inventory-[0-9a-f]+\.yaml$/.test(name)) return this.inventory;
    return this.back.get(name) ?? name;
  }

  /** text replaces sent names at the start of `name:line:col` and inside messages. */
  text(s: string): string {
    let out = this.inventory ? s.replace(/\S*\/api-plans\/inventory-[0-9a-f]+\.yaml/g, this.inventory) : s;
    for (const [sent, local] of this.back) {
      if (sent === local) continue;
      if (out.startsWith(`${sent}:`)) out = local + out.slice(sent.length);
      out = out.split(`(${sent}`).join(`(${local}`).split(` ${sent},`).join(` ${local},`).split(` ${sent})`).join(` ${local})`);
    }
    return out;
  }

  /** error maps the names in an error from the host. */
  error(err: unknown): unknown {
    if (err instanceof SpecError) {
      return new SpecError(err.issues.map((i: SpecIssue) => ({ ...i, file: this.file(i.file) })));
    }
    if (err instanceof FactoryError) {
      const mapped = this.text(err.message);
      if (mapped !== err.message) {
        const e = new FactoryError(mapped, { code: err.code, hint: err.hint, exitCode: err.exitCode });
        return e;
      }
    }
    return err;
  }
}

/** HttpControl is the control operations of the CLI, run on a control host. */
export class HttpControl {
  /**
   * @param client the host's API client
   * @param where names the host in messages (`control host unix:/…/control.sock`, `https://…`)
   */
  constructor(readonly client: ApiClient, readonly where: string = client.current) {}

  /** status is GET /v1/status: agents and tasks as the host's agents report them (cached: as recorded). */
  async status(opts: { cached: boolean; events?: number }): Promise<StatusResult> {
    const q = new URLSearchParams({ cached: String(opts.cached) });
    if (opts.events !== undefined) q.set('events', String(Math.min(1000, Math.max(0, opts.events))));
    return this.client.getJson<StatusResult>(`/v1/status?${q}`);
  }

  /** diff is POST /v1/plans/diff. */
  async diff(req: PlanRequest): Promise<DiffResult> {
    const { body, names } = await this.planBody(req);
    try {
      return this.mapResult(await this.client.postJson<DiffResult>('/v1/plans/diff', body), names, req);
    } catch (err) {
      throw names.error(err);
    }
  }

  /** apply is POST /v1/plans/apply: progress lines go to req.progress as they come. */
  async apply(req: PlanRequest): Promise<ApplyResult> {
    return this.write('apply', req);
  }

  /** destroy is POST /v1/plans/destroy. */
  async destroy(req: PlanRequest): Promise<ApplyResult> {
    return this.write('destroy', req);
  }

  /** drain is POST /v1/agents/:name/drain (undo: /undrain). */
  async drain(agent: string, undo: boolean): Promise<DrainResult> {
    return this.client.postJson<DrainResult>(`/v1/agents/${encodeURIComponent(agent)}/${undo ? 'undrain' : 'drain'}`, {}, { timeoutMs: Math.max(this.client.timeoutMs, LONG_CALL_MS) });
  }

  /** restartTask is POST /v1/tasks/:id/restart. */
  async restartTask(task: string): Promise<RestartTaskResult> {
    return this.client.postJson<RestartTaskResult>(`/v1/tasks/${encodeURIComponent(task)}/restart`, {}, { timeoutMs: Math.max(this.client.timeoutMs, LONG_CALL_MS) });
  }

  /** vmAction is POST /v1/vms/:task/:action. */
  async vmAction(task: string, action: 'start' | 'stop' | 'reboot' | 'force-off'): Promise<VmActionView> {
    return this.client.postJson<VmActionView>(`/v1/vms/${encodeURIComponent(task)}/${action}`, {}, { timeoutMs: Math.max(this.client.timeoutMs, LONG_CALL_MS) });
  }

  /**
   * logs is GET /v1/tasks/:id/logs, streamed: each chunk goes to onData; with follow it runs until
   * signal aborts (then it resolves).
   */
  async logs(req: LogStreamRequest & { task: string }): Promise<void> {
    await this.streamLogs(`/v1/tasks/${encodeURIComponent(req.task)}/logs`, req);
  }

  /** jobs lists the jobs (GET /v1/jobs). */
  async jobs(): Promise<JobView[]> {
    return (await this.client.getJson<{ jobs: JobView[] }>('/v1/jobs')).jobs;
  }

  /** jobPath resolves a job argument (plan/job or a unique name) to its path under /v1/jobs. */
  private async jobPath(name: string): Promise<{ id: string; path: string }> {
    const job = resolveJobName(await this.jobs(), name);
    return { id: job.id, path: `/v1/jobs/${job.id.split('/').map(encodeURIComponent).join('/')}` };
  }

  /** jobRuns lists a job's runs, newest first. */
  async jobRuns(name: string): Promise<{ job: string; runs: RunRecord[] }> {
    const j = await this.jobPath(name);
    return { job: j.id, runs: (await this.client.getJson<{ runs: RunRecord[] }>(`${j.path}/runs`)).runs };
  }

  /** runJob starts a run of a job now (POST /v1/jobs/:plan/:job/run). */
  async runJob(name: string, force: boolean): Promise<RunRecord> {
    const j = await this.jobPath(name);
    return (await this.client.postJson<{ run: RunRecord }>(`${j.path}/run${force ? '?force=true' : ''}`, {})).run;
  }

  /** suspendJob suspends (or resumes) a job. */
  async suspendJob(name: string, suspend: boolean): Promise<JobView> {
    const j = await this.jobPath(name);
    return (await this.client.postJson<{ job: JobView }>(`${j.path}/${suspend ? 'suspend' : 'resume'}`, {})).job;
  }

  /** deployment is one deployment (GET /v1/deployments/:id; an id or a unique prefix of its hex). */
  async deployment(id: string): Promise<DeploymentRecord> {
    return (await this.client.getJson<{ deployment: DeploymentRecord }>(`/v1/deployments/${encodeURIComponent(id)}`)).deployment;
  }

  /** deploymentDetail is one deployment and its events (the newest 50, oldest first). */
  async deploymentDetail(id: string): Promise<{ deployment: DeploymentRecord; events: EventRecord[] }> {
    const r = await this.client.getJson<{ deployment: DeploymentRecord; events?: EventRecord[] }>(`/v1/deployments/${encodeURIComponent(id)}`);
    return { deployment: r.deployment, events: r.events ?? [] };
  }

  /** deployments lists deployments, newest first. */
  async deployments(plan?: string): Promise<DeploymentRecord[]> {
    return (await this.client.getJson<{ deployments: DeploymentRecord[] }>(`/v1/deployments${plan ? `?plan=${encodeURIComponent(plan)}` : ''}`)).deployments;
  }

  /** promoteDeployment promotes a deployment's canaries. */
  async promoteDeployment(id: string): Promise<DeploymentRecord> {
    return (await this.client.postJson<{ deployment: DeploymentRecord }>(`/v1/deployments/${encodeURIComponent(id)}/promote`, {})).deployment;
  }

  /** operateDeployment pauses, resumes, aborts or reverts a deployment. */
  async operateDeployment(id: string, action: OperatorAction): Promise<DeploymentRecord> {
    return (await this.client.postJson<{ deployment: DeploymentRecord }>(`/v1/deployments/${encodeURIComponent(id)}/${action}`, {})).deployment;
  }

  /** runLogs streams a run's output: a run id, or a job for its newest run. */
  async runLogs(req: LogStreamRequest & { run: string }): Promise<void> {
    let run = req.run;
    if (!/\/\d{4}-\d\d-\d\dT[^/]+Z$/.test(run)) {
      const { runs } = await this.jobRuns(run);
      if (!runs[0]) throw new FactoryError(`job ${run} has no runs kept`, { code: 'E_RUN_UNKNOWN' });
      run = runs[0].id;
    }
    await this.streamLogs(`/v1/runs/${run.split('/').map(encodeURIComponent).join('/')}/logs`, req);
  }

  /**
   * streamLogs is GET `route` (a task's or a run's logs), streamed: each chunk goes to onData; an abort
   * through req.signal ends it quietly.
   */
  private async streamLogs(route: string, req: LogStreamRequest): Promise<void> {
    const q = new URLSearchParams({ follow: String(req.follow), stream: req.stream });
    if (req.tail !== undefined) q.set('tail', String(req.tail));
    try {
      await this.client.stream('GET', `${route}?${q}`, undefined, {
        signal: req.signal,
        onLine: (obj) => {
          if (typeof obj.stdout === 'string') req.onData('stdout', obj.stdout);
          if (typeof obj.stderr === 'string') req.onData('stderr', obj.stderr);
        },
      });
    } catch (err) {
      if (req.signal?.aborted && err instanceof FactoryError && err.code === 'E_ABORTED') return;
      throw err;
    }
  }

  /** controlStatus asks who the control hosts are, who leads, and how each one sees it (GET /v1/control). */
  async controlStatus(): Promise<ControlStatus> {
    return this.client.getJson<ControlStatus>('/v1/control');
  }

  /** tokens lists the tokens (GET /v1/tokens). */
  async tokens(): Promise<TokenView[]> {
    return (await this.client.getJson<{ tokens: TokenView[] }>('/v1/tokens')).tokens;
  }

  /** createToken is POST /v1/tokens: the answer carries the secret, once. */
  async createToken(req: { scope: 'read' | 'write' | 'admin'; project?: string; description?: string }): Promise<{ token: string; record: TokenView }> {
    return this.client.postJson('/v1/tokens', req);
  }

  /** revokeToken is DELETE /v1/tokens/:id. */
  async revokeToken(id: string): Promise<{ revoked: string }> {
    return this.client.deleteJson(`/v1/tokens/${encodeURIComponent(id)}`);
  }

  private async write(op: 'apply' | 'destroy', req: PlanRequest): Promise<ApplyResult> {
    const { body, names } = await this.planBody(req);
    try {
      const r = await this.client.stream<ApplyResult>('POST', `/v1/plans/${op}`, body, { onProgress: (l) => req.progress?.(names.text(l)) });
      return this.mapResult(r, names, req);
    } catch (err) {
      throw names.error(err);
    }
  }

  /** planBody reads the plan files (and the inventory, when given) as a local run would. */
  private async planBody(req: PlanRequest): Promise<{ body: Record<string, unknown>; names: Names }> {
    const files = await expandPlanPaths(req.paths);
    const names = new Names();
    const taken = new Set<string>();
    const plans: { file: string; text: string }[] = [];
    for (const f of files) {
      const text = await readSpecFile(f, 'plan');
      const name = sentName(f, taken);
      names.add(f, name);
      plans.push({ file: name, text });
    }
    const body: Record<string, unknown> = { plans };
    if (req.inventory !== undefined && req.inventory !== '') {
      const text = await readSpecFile(req.inventory, 'inventory');
      const name = sentName(req.inventory, taken);
      names.add(req.inventory, name);
      names.inventory = req.inventory;
      body.inventory = { file: name, text };
    }
    if (req.offline !== undefined) body.offline = req.offline;
    if (req.seed !== undefined) body.seed = req.seed;
    return { body, names };
  }

  /** mapResult puts the user's paths back into a result (plans' files, warnings, a sent inventory). */
  private mapResult<T extends DiffResult>(r: T, names: Names, req: PlanRequest): T {
    if (!r || typeof r !== 'object') return r;
    if (Array.isArray(r.plans)) r.plans = r.plans.map((p) => ({ ...p, file: names.file(p.file) }));
    if (Array.isArray(r.warnings)) r.warnings = r.warnings.map((w) => names.text(w));
    // a sent inventory was kept under the host's state directory: the user knows it by its own path
    if (req.inventory) r.inventory = req.inventory;
    return r;
  }
}
