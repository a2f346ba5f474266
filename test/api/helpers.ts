/** Shared fixtures of the API tests: a seeded MemoryBackend and a fake ControlApi that counts its calls. */
import { FactoryError } from '../../src/errors.js';
import type { ApplyResult, ControlApi, DiffResult, OpContext, PlanDocuments } from '../../src/api/contract.js';
import type { EventInput } from '../../src/state/backend.js';
import { MemoryBackend } from '../../src/state/memory-backend.js';
import type { EventRetention } from '../../src/state/event-log.js';
import type { AgentRecord, TaskRecord } from '../../src/state/types.js';

export function planText(name: string, project: string): string {
  return `name: ${name}\nproject: ${project}\nprocesses:\n  - name: web\n    command: ["sleep", "infinity"]\n`;
}

export function task(id: string, project: string): TaskRecord {
  const [plan, group] = id.split('/');
  return {
    task: id, plan: plan!, group: group!, project, agent: 'a1', driver: 'process', specHash: 'x', state: 'running',
    resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: new Date().toISOString(),
  };
}

export function agent(name: string): AgentRecord {
  return { name, idc: 'i', cluster: 'c', state: 'ready', resources: { cpus: 2, mem: 1, disk: 1, gpus: 0, scalars: {} }, attributes: {}, drivers: ['process'] };
}

/** seeded returns a backend with two projects' tasks and plans and one agent. */
export async function seeded(retention?: EventRetention): Promise<MemoryBackend> {
  const b = new MemoryBackend(retention ? { retention } : {});
  await b.lock();
  await b.commit({
    ops: [
      { table: 'agents', key: 'a1', value: agent('a1') },
      { table: 'tasks', key: 'web/web/0', value: task('web/web/0', 'alpha') },
      { table: 'tasks', key: 'db/db/0', value: task('db/db/0', 'beta') },
      { table: 'plans', key: 'web', value: { name: 'web', project: 'alpha', file: 'web.yaml', appliedAt: new Date().toISOString() } },
      { table: 'plans', key: 'db', value: { name: 'db', project: 'beta', file: 'db.yaml', appliedAt: new Date().toISOString() } },
    ],
    events: [
      { topic: 'task', kind: 'task-started', message: 'web', task: 'web/web/0', project: 'alpha' },
      { topic: 'task', kind: 'task-started', message: 'db', task: 'db/db/0', project: 'beta' },
    ],
  });
  await b.unlock();
  return b;
}

/** publish commits events (under the lock). */
export async function publish(b: MemoryBackend, events: EventInput[]): Promise<number> {
  await b.lock();
  try {
    return await b.commit({ ops: [], events });
  } finally {
    await b.unlock();
  }
}

export interface FakeCall {
  op: string;
  arg: unknown;
  by: string;
}

/** FakeControl records the calls; `fail` makes the next call throw; `gate` holds apply until released. */
export class FakeControl implements ControlApi {
  calls: FakeCall[] = [];
  fail?: unknown;
  gate?: Promise<void>;

  private hit(op: string, arg: unknown, ctx: OpContext): void {
    this.calls.push({ op, arg, by: ctx.by });
    if (this.fail !== undefined) {
      const f = this.fail;
      this.fail = undefined;
      throw f;
    }
  }

  private diff(docs: PlanDocuments): DiffResult {
    return {
      changes: { create: 1, destroy: 0, update: 0 }, placements: [], unplaced: [], stops: [],
      plans: docs.plans.map((p) => ({ name: p.name, project: p.project, file: p.file })), inventory: 'inv', offline: false, agents: [], warnings: [], stranded: {}, groups: [],
    };
  }

  async status(o: { cached: boolean }, ctx: OpContext) {
    this.hit('status', o, ctx);
    return { agents: [], tasks: [{ task: 'web/web/0', project: 'alpha' }, { task: 'db/db/0', project: 'beta' }] as never, events: [], refreshed: !o.cached };
  }
  async restartTask(task: string, ctx: OpContext) {
    this.hit('restart', task, ctx);
    return { task, agent: 'a1', state: 'running' };
  }
  async logs(req: Parameters<ControlApi['logs']>[0], ctx: OpContext) {
    this.hit('logs', req.task, ctx);
    req.onData('stdout', 'hello\n');
    req.onData('stderr', 'oops\n');
  }
  async drain(agentName: string, o: { undo: boolean }, ctx: OpContext) {
    this.hit(o.undo ? 'undrain' : 'drain', agentName, ctx);
    return { agent: agentName, draining: !o.undo, plans: [], skipped: [], moved: [], remaining: [] };
  }
  async diffPlans(docs: PlanDocuments, ctx: OpContext) {
    this.hit('diff', docs.plans.map((p) => p.name), ctx);
    return this.diff(docs);
  }
  async applyPlans(docs: PlanDocuments, ctx: OpContext): Promise<ApplyResult> {
    this.hit('apply', docs.plans.map((p) => p.name), ctx);
    ctx.progress?.('connecting to 1 agent');
    if (this.gate) await this.gate;
    return { ...this.diff(docs), results: [], ok: true };
  }
  async destroyPlans(docs: PlanDocuments, ctx: OpContext): Promise<ApplyResult> {
    this.hit('destroy', docs.plans.map((p) => p.name), ctx);
    return { ...this.diff(docs), results: [], ok: true };
  }
  async vmAction(taskId: string, action: string, ctx: OpContext) {
    this.hit(`vm-${action}`, taskId, ctx);
    return { agent: 'a1', state: 'running' } as never;
  }
  async runJob(job: string, opts: { force: boolean }, ctx: OpContext) {
    this.hit('job-run', job, ctx);
    return { id: `${job}/2026-12-01T00:00:00.000Z`, job, state: 'claimed', force: opts.force } as never;
  }
  async suspendJob(job: string, suspend: boolean, ctx: OpContext) {
    this.hit(suspend ? 'job-suspend' : 'job-resume', job, ctx);
    return { id: job, suspended: suspend } as never;
  }
  async promoteDeployment(id: string, ctx: OpContext) {
    this.hit('deploy-promote', id, ctx);
    return { id, status: 'running', promoted: true } as never;
  }
  async operateDeployment(id: string, action: string, ctx: OpContext) {
    this.hit(`deploy-${action}`, id, ctx);
    return { id, status: action === 'pause' ? 'paused' : 'running' } as never;
  }
  async runLogs(req: { run: string; onData: (s: 'stdout' | 'stderr', c: string) => void }, ctx: OpContext) {
    this.hit('run-logs', req.run, ctx);
    req.onData('stdout', 'hello\n');
  }
}

export const locked = () => new FactoryError('the state is locked by pid 1', { code: 'E_STATE_LOCKED' });
