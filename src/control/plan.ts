/**
 * The plan operations behind `plan diff`, `plan apply` and `plan destroy`. diff is apply without
 * the applier (Nomad's `job plan`): the same scheduler run against the same snapshot.
 */
import pLimit from 'p-limit';
import { FactoryError } from '../errors.js';
import path from 'node:path';
import { embeddedInventory, EMBEDDED_INVENTORY_FILE, loadInventoryFile, loadPlans, resolveInventory } from '../spec/index.js';
import { loadPlanText } from '../spec/load.js';
import type { InventorySpec, PlanSpec } from '../spec/model.js';
import { schedule } from '../scheduler/index.js';
import type { GroupDecision, Placement, SchedulePlan, Stop, TaskResources } from '../scheduler/types.js';
import type { StateBackend } from '../state/backend.js';
import { StateWork } from '../state/work.js';
import { stateOf } from './state-handle.js';
import type { TaskStatus } from '../protocol/messages.js';
import { AgentPool, type ConnectedAgent } from './agents.js';
import { GroupIndex, desiredGroupsOf, runSpecOf } from './desired.js';
import { observe, recordTaskStatus, snapshotOf, type OfflineDiscovery, type StrayTask } from './snapshot.js';
import { stopStrays } from './strays.js';
import { localCapacities } from './local-capacity.js';
import { movedOffDraining } from './drain-moves.js';

/** PlanOptions are the inputs shared by diff, apply and destroy. */
export interface PlanOptions {
  planPaths: string[];
  stateDir: string;
  inventoryPath?: string;
  offline?: boolean;
  seed?: number;
  /** progress receives one human line per step (the CLI prints it on stderr). */
  progress?: (line: string) => void;
  /** planTexts are plan documents sent rather than read from files (the HTTP API): loaded as from their file names. */
  planTexts?: { file: string; text: string }[];
  /** planSpecs are plans already parsed (the HTTP API's bodies, the recorded specs): recorded under their own file names. */
  planSpecs?: PlanSpec[];
  /** by is who asks (a token id or local:<user>): recorded on the events and the plans applied. */
  by?: string;
}

/** ResourcesView is a task's resources as printed in JSON: mem and disk in bytes, scalars inline. */
export type ResourcesView = { cpus: number; mem: number; disk: number; gpus: number; ports: number[] } & Record<string, number | number[]>;

/** PlacementView is one task of the applied plans and where it runs or will run. */
export interface PlacementView {
  task: string;
  group: string;
  plan: string;
  project: string;
  idc: string;
  cluster: string;
  agent: string;
  driver: string;
  resources: ResourcesView;
  /** action is what apply does with it: create, restart, update, reschedule, or keep. */
  action: 'create' | 'restart' | 'update' | 'reschedule' | 'keep';
}

/** StopView is one task apply stops. */
export interface StopView {
  task: string;
  group: string;
  plan: string;
  agent: string;
  reason: string;
}

/** UnplacedView is one task that fits nowhere, with the reason. */
export interface UnplacedView {
  task: string;
  group: string;
  plan: string;
  project: string;
  reason: string;
  causes: Record<string, number>;
}

/** DiffResult is the `plan diff --json` document. */
export interface DiffResult {
  changes: { create: number; destroy: number; update: number };
  placements: PlacementView[];
  unplaced: UnplacedView[];
  stops: StopView[];
  plans: { name: string; project: string; file: string }[];
  inventory: string;
  offline: boolean;
  agents: { name: string; state: string; error?: string }[];
  warnings: string[];
  /** stranded is free capacity per resource on agents where no task of these plans fits (mem and disk in bytes). */
  stranded: Record<string, number>;
  /** groups is where each group went (level 1: idc + cluster) and, for resource plans, the split (level 2). */
  groups: GroupDecision[];
}

/** OpResult is the outcome of one executor call during apply or destroy. */
export interface OpResult {
  task: string;
  agent: string;
  action: 'start' | 'stop';
  ok: boolean;
  state?: string;
  pid?: number;
  error?: string;
}

/** ApplyResult is the `plan apply --json` document. */
export interface ApplyResult extends DiffResult {
  results: OpResult[];
  ok: boolean;
}

/** resourcesView flattens TaskResources for output. */
export function resourcesView(r: TaskResources): ResourcesView {
  const out: Record<string, number | number[]> = { cpus: r.cpus, mem: r.mem, disk: r.disk, gpus: r.gpus, ports: r.ports };
  for (const [k, v] of Object.entries(r.scalars)) out[k] = v;
  return out as ResourcesView;
}

interface Prepared {
  plans: PlanSpec[];
  inventory: InventorySpec;
  plan: SchedulePlan;
  pool?: AgentPool;
  state: StateBackend & { dir: string };
  work: StateWork;
  diff: DiffResult;
}

function agentSpec(inv: InventorySpec, name: string) {
  return inv.agents.find((a) => a.name === name);
}

function viewOf(inv: InventorySpec, plans: PlanSpec[], plan: SchedulePlan, offline: boolean, pool?: AgentPool): DiffResult {
  const warnings = plans.flatMap((p) => p.warnings.map((w) => `${w.file}:${w.line}:${w.col}: ${w.path ? `${w.path}: ` : ''}${w.message}`));
  const placements: PlacementView[] = [];
  const applied = new Set(plans.map((p) => p.name));
  for (const k of plan.keep) {
    if (!applied.has(k.plan)) continue;
    const a = agentSpec(inv, k.agent);
    placements.push({
      task: k.task, group: k.group, plan: k.plan, project: k.project,
      idc: a?.idc ?? '', cluster: a?.cluster ?? '', agent: k.agent, driver: k.driver,
      resources: resourcesView(k.resources), action: 'keep',
    });
  }
  for (const c of plan.create) {
    placements.push({
      task: c.task, group: c.group, plan: c.plan, project: c.project,
      idc: c.idc, cluster: c.cluster, agent: c.agent, driver: c.driver,
      resources: resourcesView(c.resources), action: c.reason === 'new' ? 'create' : c.reason,
    });
  }
  placements.sort((a, b) => compareTaskIds(a.task, b.task));
  const stops: StopView[] = plan.stop
    .filter((s) => s.reason !== 'update')
    .map((s) => ({ task: s.task.task, group: s.task.group, plan: s.task.plan, agent: s.task.agent, reason: s.reason }))
    // in task order, as placements are: the state's iteration order differs between a host (records
    // in memory) and a one-shot run (replayed from the journal), and the output must not
    .sort((a, b) => compareTaskIds(a.task, b.task) || (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0));
  return {
    changes: plan.changes,
    placements,
    unplaced: plan.unplaced.map((u) => ({ task: u.task, group: u.group, plan: u.plan, project: u.project, reason: u.reason, causes: u.causes })),
    stops,
    plans: plans.map((p) => ({ name: p.name, project: p.project, file: p.file })),
    inventory: inv.file,
    offline,
    agents: inv.agents.map((a) => {
      const failed = pool?.failed.get(a.name);
      return failed ? { name: a.name, state: 'lost', error: failed.error } : { name: a.name, state: offline ? 'declared' : 'ready' };
    }),
    warnings,
    stranded: plan.stranded,
    groups: plan.groups,
  };
}

/** compareTaskIds orders `plan/group/index` ids with numeric indices in numeric order. */
export function compareTaskIds(a: string, b: string): number {
  const ia = a.lastIndexOf('/');
  const ib = b.lastIndexOf('/');
  const pa = a.slice(0, ia);
  const pb = b.slice(0, ib);
  if (pa !== pb) return pa < pb ? -1 : 1;
  const na = Number(a.slice(ia + 1));
  const nb = Number(b.slice(ib + 1));
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

async function prepare(opts: PlanOptions, mode: 'diff' | 'apply' | 'destroy'): Promise<Prepared> {
  const plans = [...(await loadPlans(opts.planPaths)), ...(opts.planTexts ?? []).map((t) => loadPlanText(t.text, t.file)), ...(opts.planSpecs ?? [])];
  const names = new Set<string>();
  for (const p of plans) {
    if (names.has(p.name)) throw new FactoryError(`two plans are named '${p.name}' (${plans.filter((q) => q.name === p.name).map((q) => q.file).join(', ')})`, { code: 'E_PLAN_DUPLICATE' });
    names.add(p.name);
  }
  const inventory = await resolveInventory(opts.inventoryPath);
  const state = await stateOf(opts.stateDir);
  if (mode !== 'diff') await state.lock({ purpose: `plan ${mode}`, onWait: opts.progress ? (who) => opts.progress!(`waiting for the state lock held by ${who}`) : undefined });
  try {
    return await planAgainst(state, new StateWork(state, opts.by), plans, inventory, opts, mode);
  } catch (err) {
    if (mode !== 'diff') await state.unlock();
    throw err;
  }
}

/** planAgainst observes the agents (unless offline) and schedules the plans against them; the caller holds the store's lock for apply and destroy. */
async function planAgainst(state: StateBackend & { dir: string }, work: StateWork, plans: PlanSpec[], inventory: InventorySpec, opts: PlanOptions, mode: 'diff' | 'apply' | 'destroy'): Promise<Prepared> {
  const offline = mode === 'diff' && Boolean(opts.offline);
  let pool: AgentPool | undefined;
  try {
    if (!offline) {
      opts.progress?.(`connecting to ${inventory.agents.length} agent${inventory.agents.length === 1 ? '' : 's'}`);
      pool = await AgentPool.connect(inventory.agents, {
        stateDir: state.dir,
        stateId: state.id,
        settings: inventory.settings,
        onProgress: (agent, ev, detail) => opts.progress?.(ev === 'connected' ? `agent ${agent}: connected` : `agent ${agent}: ${ev === 'lost' ? '' : 'unreachable: '}${detail}`),
      });
      const seen = { strays: [] as StrayTask[] };
      observe(work, inventory, pool, new Date().toISOString(), undefined, seen);
      if (mode !== 'diff') {
        const stopped = await stopStrays(pool, seen.strays, work, new Date().toISOString());
        for (const r of stopped) {
          opts.progress?.(`${r.task} on ${r.agent}: ${r.ok ? `stray copy stopped (it runs on ${r.keptOn})` : `cannot stop the stray copy: ${r.error}`}`);
        }
        // what was stopped is recorded before anything starts; a plain observation is saved with the
        // apply's own writes (a run that dies before them loses nothing the next observation does not see)
        if (stopped.length > 0) await work.flush();
      }
    }
    const locals = offline ? await localCapacities(inventory, state.dir) : new Map();
    const offlineDiscovery: OfflineDiscovery = (spec) => locals.get(spec.name);
    const { agents, actual } = snapshotOf(inventory, work, { offline, offlineDiscovery });
    const groups = mode === 'destroy' ? [] : desiredGroupsOf(plans);
    const plan = schedule({
      agents,
      groups,
      actual: movedOffDraining(actual, agents, groups),
      plans: plans.map((p) => p.name),
      seed: opts.seed ?? 1,
      projects: inventory.projects,
    });
    if (mode === 'destroy') for (const s of plan.stop) s.reason = 'destroy';
    return { plans, inventory, plan, pool, state, work, diff: viewOf(inventory, plans, plan, offline, pool) };
  } catch (err) {
    await pool?.close();
    throw err;
  }
}

/** diffPlans computes what apply would do; it writes nothing. */
export async function diffPlans(opts: PlanOptions): Promise<DiffResult> {
  const p = await prepare(opts, 'diff');
  await p.pool?.close();
  return p.diff;
}

/** applyPlans converges the agents to the plans: stops first, then starts, recording each step. */
export async function applyPlans(opts: PlanOptions): Promise<ApplyResult> {
  const p = await prepare(opts, 'apply');
  try {
    const results = await execute(p, opts);
    const now = new Date().toISOString();
    // the plan as applied (and its inventory) is the desired state a control host keeps converging to
    const inventory = p.inventory.file === EMBEDDED_INVENTORY_FILE ? undefined : path.resolve(p.inventory.file);
    for (const plan of p.plans) {
      // a plan file's absolute path (`agents drain` and the dashboard may run from another directory); a sent plan keeps its name
      const sent = opts.planTexts?.some((t) => t.file === plan.file) || opts.planSpecs?.includes(plan);
      const file = sent ? plan.file : path.resolve(plan.file);
      p.work.plans.put({ name: plan.name, project: plan.project, file, appliedAt: now, spec: plan, ...(inventory ? { inventory } : {}), ...(opts.by ? { appliedBy: opts.by } : {}) });
    }
    for (const plan of p.plans) {
      const c = p.diff.placements.filter((x) => x.plan === plan.name && x.action !== 'keep').length + p.diff.stops.filter((x) => x.plan === plan.name).length;
      p.work.event({ at: now, kind: 'plan-applied', plan: plan.name, project: plan.project, message: `applied ${plan.name}${opts.by ? ` (by ${opts.by})` : ''}: ${c} change${c === 1 ? '' : 's'}` });
    }
    await p.work.flush();
    return { ...p.diff, results, ok: results.every((r) => r.ok) };
  } finally {
    await p.pool?.close();
    await p.state.unlock();
  }
}

/** ReconcileResult is one pass of reconcileRecorded: skipped (and why), or what each inventory's pass did. */
export interface ReconcileResult {
  skipped?: string;
  passes: { inventory: string; plans: string[]; changes: ApplyResult['changes']; results: OpResult[]; unplaced: number; error?: string }[];
}

/**
 * reconcileRecorded converges the agents to the plans as they were last applied (recorded in the
 * state with their inventory), without reading any plan file: a dead or unhealthy task is restarted
 * per its restart policy, a task of a lost agent moves, a stray copy is stopped. It is the control
 * host's supervision pass. It never waits for the state lock: while another factory holds it, the
 * pass is skipped. The state is written only when something was done.
 */
export async function reconcileRecorded(opts: { stateDir: string; seed?: number; progress?: (line: string) => void }): Promise<ReconcileResult> {
  const state = await stateOf(opts.stateDir);
  try {
    await state.lock({ purpose: 'reconcile (control host)', timeoutMs: 0 });
  } catch (err) {
    if ((err as FactoryError).code === 'E_STATE_LOCKED') return { skipped: 'the state is locked by another factory command', passes: [] };
    throw err;
  }
  const out: ReconcileResult = { passes: [] };
  try {
    const byInventory = new Map<string, PlanSpec[]>();
    for (const rec of state.view().list('plans')) {
      if (!rec.spec) continue; // applied before plans were recorded: the next apply records it
      const key = rec.inventory ?? '';
      byInventory.set(key, [...(byInventory.get(key) ?? []), rec.spec]);
    }
    for (const [inv, plans] of byInventory) {
      // one inventory that cannot be read (moved, now invalid) does not stop the passes of the others
      let inventory: InventorySpec;
      try {
        inventory = inv ? await loadInventoryFile(inv) : embeddedInventory();
      } catch (err) {
        const why = (err as Error).message;
        opts.progress?.(`cannot read inventory ${inv}, its plans (${plans.map((x) => x.name).join(', ')}) are not supervised: ${why}`);
        out.passes.push({ inventory: inv, plans: plans.map((x) => x.name), changes: { create: 0, destroy: 0, update: 0 }, results: [], unplaced: 0, error: why });
        continue;
      }
      const popts: PlanOptions = { planPaths: [], stateDir: state.dir, seed: opts.seed, progress: opts.progress, by: 'control-host' };
      // a pass every few seconds: say what was done and what failed, not that the agents answered
      const quiet = (line: string) => {
        if (!/^connecting to \d+ agents?$|^agent [^:]+: connected$/.test(line)) opts.progress?.(line);
      };
      const p = await planAgainst(state, new StateWork(state, 'control-host'), plans, inventory, { ...popts, progress: quiet }, 'apply');
      try {
        const c = p.diff.changes;
        const results = c.create + c.update + c.destroy > 0 ? await execute(p, popts) : [];
        if (results.length > 0) {
          const now = new Date().toISOString();
          p.work.event({ at: now, topic: 'reconcile', kind: 'plan-reconciled', message: `reconciled ${plans.map((x) => x.name).join(', ')}: ${results.length} change${results.length === 1 ? '' : 's'}` });
        }
        // observations (an agent lost or back, a task found exited) are recorded even when nothing was done
        await p.work.flush();
        out.passes.push({ inventory: inventory.file, plans: plans.map((x) => x.name), changes: c, results, unplaced: p.diff.unplaced.length });
      } finally {
        await p.pool?.close();
      }
    }
    return out;
  } finally {
    await state.unlock();
  }
}

/** destroyPlans stops every task of the plans and forgets them. */
export async function destroyPlans(opts: PlanOptions): Promise<ApplyResult> {
  const p = await prepare(opts, 'destroy');
  try {
    const results = await execute(p, opts);
    const now = new Date().toISOString();
    forgetDestroyed(p.work, p.plans.map((x) => x.name));
    for (const plan of p.plans) p.work.event({ at: now, kind: 'plan-destroyed', plan: plan.name, project: plan.project, message: `destroyed ${plan.name}${opts.by ? ` (by ${opts.by})` : ''}` });
    await p.work.flush();
    return { ...p.diff, results, ok: results.every((r) => r.ok) };
  } finally {
    await p.pool?.close();
    await p.state.unlock();
  }
}

/**
 * forgetDestroyed updates the plan records after a destroy: a plan none of whose tasks is left is
 * forgotten; one with tasks left (a stop failed, its agent unreachable) keeps its record for the next
 * destroy but loses its applied spec, so a control host's supervision never brings it back.
 */
export function forgetDestroyed(work: StateWork, plans: string[]): void {
  const left = new Set(work.tasks.values().map((t) => t.plan));
  for (const name of plans) {
    const rec = work.plans.get(name);
    if (!rec) continue;
    if (!left.has(name)) work.plans.delete(name);
    else {
      const { spec: _spec, ...rest } = rec;
      work.plans.put(rest);
    }
  }
}

type Op = { kind: 'stop'; stop: Stop } | { kind: 'start'; placement: Placement };

/** AGENT_FANOUT bounds how many agents apply works on at once. */
export const AGENT_FANOUT = 16;
/** PER_AGENT_CALLS bounds the executor calls in flight on one agent. */
export const PER_AGENT_CALLS = 8;
/** SAVE_INTERVAL_MS is the least time between two state writes while an apply's calls complete. */
export const SAVE_INTERVAL_MS = 250;

async function execute(p: Prepared, opts: PlanOptions): Promise<OpResult[]> {
  const byAgent = new Map<string, Op[]>();
  const push = (agent: string, op: Op) => {
    const list = byAgent.get(agent) ?? [];
    list.push(op);
    byAgent.set(agent, list);
  };
  for (const s of p.plan.stop) push(s.task.agent, { kind: 'stop', stop: s });
  for (const c of p.plan.create) push(c.agent, { kind: 'start', placement: c });
  const index = new GroupIndex(p.plans);
  const results: OpResult[] = [];
  // Stops run before starts everywhere, so capacity freed on one agent is free before anything lands.
  // Within a phase, up to AGENT_FANOUT agents are worked on at once and up to PER_AGENT_CALLS calls are
  // in flight on each (the executor serves requests concurrently; each task has its own folder).
  // The state is written at most every SAVE_INTERVAL_MS while calls complete and once at the end by
  // the caller: rewriting the whole document after every call made large applies quadratic, and a
  // crash in between loses nothing that the next run's observation of the agents does not recover.
  const phase = async (kind: Op['kind']) => {
    const agents = pLimit(AGENT_FANOUT);
    await Promise.all(
      [...byAgent.entries()].map(([agent, ops]) =>
        agents(async () => {
          const calls = pLimit(PER_AGENT_CALLS);
          await Promise.all(
            ops
              .filter((op) => op.kind === kind)
              .map((op) =>
                calls(async () => {
                  const r = await runOp(p, agent, op, index);
                  results.push(r);
                  opts.progress?.(describe(r));
                  await p.work.flushThrottled(SAVE_INTERVAL_MS);
                }),
              ),
          );
        }),
      ),
    );
  };
  await phase('stop');
  await phase('start');
  return results.sort((a, b) => (a.action === b.action ? compareTaskIds(a.task, b.task) : a.action === 'stop' ? -1 : 1));
}

function describe(r: OpResult): string {
  const verb = r.action === 'stop' ? 'stopped' : 'started';
  if (!r.ok) return `${r.task} on ${r.agent}: ${r.action} failed: ${r.error}`;
  if (r.state === 'deferred') return `${r.task} on ${r.agent}: stop deferred: ${r.error}`;
  return `${r.task} on ${r.agent}: ${verb}${r.pid ? ` (pid ${r.pid})` : ''}${r.state && r.state !== 'running' && r.action === 'start' ? ` — ${r.state}` : ''}`;
}

async function runOp(p: Prepared, agent: string, op: Op, index: GroupIndex): Promise<OpResult> {
  const work = p.work;
  const now = new Date().toISOString();
  const conn: ConnectedAgent | undefined = p.pool?.connected.get(agent);
  const task = op.kind === 'stop' ? op.stop.task.task : op.placement.task;
  if (!conn) {
    const why = p.pool?.failed.get(agent)?.error ?? 'not connected';
    // the old copy of a task moved off a lost agent is stopped when that agent is back (observe → stopStrays)
    if (op.kind === 'stop' && op.stop.reason === 'reschedule') {
      return { task, agent, action: 'stop', ok: true, state: 'deferred', error: `agent ${agent} unreachable (${why}): the old copy is stopped when it is back` };
    }
    return { task, agent, action: op.kind, ok: false, error: `agent ${agent} unreachable: ${why}` };
  }
  if (op.kind === 'stop') {
    try {
      // the group's grace bounds the call's timeout too (a VM's ACPI shutdown may take a while)
      const grace = index.get(op.stop.task.plan, op.stop.task.group)?.group.stopGraceMs;
      await conn.client.stop(task, { remove: true, ...(grace !== undefined ? { graceMs: grace } : {}) });
      const rec = work.tasks.get(task);
      // a rescheduled or updated task may already have a new record on another agent: only drop ours
      if (rec && rec.agent === agent) work.tasks.delete(task);
      work.event({ at: now, kind: 'task-stopped', task, agent, message: `stopped ${task} on ${agent} (${op.stop.reason})` });
      return { task, agent, action: 'stop', ok: true, state: 'stopped' };
    } catch (err) {
      return { task, agent, action: 'stop', ok: false, error: messageOf(err) };
    }
  }
  const pl = op.placement;
  const found = index.get(pl.plan, pl.group);
  if (!found) return { task, agent, action: 'start', ok: false, error: `no group ${pl.plan}/${pl.group}` };
  const spec = runSpecOf(pl, found.plan, found.group);
  let status: TaskStatus;
  try {
    status = await conn.client.run(spec);
  } catch (err) {
    // we do not know whether it started: record it as unknown; the next apply asks the agent
    work.tasks.put({
      task, plan: pl.plan, group: pl.group, project: pl.project, agent, driver: pl.driver, specHash: pl.specHash,
      state: 'unknown', resources: pl.resources, error: messageOf(err), updatedAt: now,
    });
    return { task, agent, action: 'start', ok: false, error: messageOf(err) };
  }
  recordTaskStatus(work, agent, { ...status, resources: status.resources ?? pl.resources }, now);
  const rec = work.tasks.get(task);
  if (rec && rec.resources !== pl.resources) work.tasks.put({ ...rec, resources: pl.resources });
  const ok = status.state === 'running' || status.state === 'finished';
  work.event({
    at: now,
    kind: ok ? (pl.reason === 'restart' ? 'task-restarted' : pl.reason === 'reschedule' ? 'task-moved' : 'task-started') : 'task-failed',
    task,
    agent,
    message: ok ? `${pl.reason === 'restart' ? 'restarted' : pl.reason === 'reschedule' ? 'moved' : 'started'} ${task} ${pl.reason === 'reschedule' ? 'to' : 'on'} ${agent}` : `${task} failed to start on ${agent}: ${status.error ?? status.state}`,
  });
  return { task, agent, action: 'start', ok, state: status.state, pid: status.pid, error: ok ? undefined : status.error ?? `task ${status.state}` };
}

function messageOf(err: unknown): string {
  return String((err as Error)?.message ?? err);
}
