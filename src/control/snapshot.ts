/**
 * Observation and snapshot: fold what agents report into the state (the hosts are the truth), and
 * turn state + inventory into the scheduler's input (AgentSnapshot[], ActualTask[]).
 */
import { FactoryError } from '../errors.js';
import type { AgentSpec, InventorySpec } from '../spec/model.js';
import { zeroResources } from '../scheduler/resources.js';
import type { ActualTask, AgentSnapshot, Driver, ResourceVector, TaskResources } from '../scheduler/types.js';
import { DRIVER_NAMES } from '../protocol/drivers.js';
import type { AgentRegistration, TaskStatus } from '../protocol/messages.js';
import type { AgentRecord, ForeignTask, TaskRecord } from '../state/types.js';
import type { StateWork, WorkEvent } from '../state/work.js';
import type { AgentPool } from './agents.js';

/** ALL_DRIVERS is assumed for a declared agent in offline what-if mode when it names none. */
export const ALL_DRIVERS: Driver[] = [...DRIVER_NAMES];

/** effectiveResources merges declared over discovered capacity: a declared value always wins. */
export function effectiveResources(declared: Partial<ResourceVector>, discovered?: ResourceVector): ResourceVector {
  const base = discovered ?? zeroResources();
  return {
    cpus: declared.cpus ?? base.cpus,
    mem: declared.mem ?? base.mem,
    disk: declared.disk ?? base.disk,
    gpus: declared.gpus ?? base.gpus,
    scalars: { ...base.scalars, ...(declared.scalars ?? {}) },
  };
}

/** emptyTaskResources is what a task record holds when nothing better is known. */
export function emptyTaskResources(): TaskResources {
  return { ...zeroResources(), ports: [] };
}

/** sameTask says whether two records of a task differ only in updatedAt. */
export function sameTask(a: TaskRecord, b: TaskRecord): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if (k === 'updatedAt') continue;
    const x = (a as unknown as Record<string, unknown>)[k];
    const y = (b as unknown as Record<string, unknown>)[k];
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null || JSON.stringify(x) !== JSON.stringify(y)) return false;
  }
  return true;
}

/**
 * backoffCarried is the restart backoff a fresh record of a task keeps: the same spec's (a new spec
 * starts with none), without the wait of a death once a new run has started.
 */
function backoffCarried(prev: TaskRecord | undefined, s: TaskStatus): Pick<TaskRecord, 'backoff'> {
  const b = prev?.backoff;
  if (!b || prev.specHash !== s.specHash) return {};
  if (b.nextAt === undefined || s.startedAt === undefined || s.startedAt === prev.startedAt) return { backoff: b };
  const { diedAt: _d, delayMs: _w, nextAt: _n, ...rest } = b;
  return { backoff: rest };
}

function taskRecordFrom(agent: string, s: TaskStatus, prev: TaskRecord | undefined, now: string): TaskRecord {
  return {
    task: s.task,
    plan: s.labels.plan,
    group: s.labels.group,
    project: s.labels.project,
    agent,
    driver: s.driver,
    specHash: s.specHash,
    state: s.state,
    resources: s.resources ?? prev?.resources ?? emptyTaskResources(),
    pid: s.pid,
    exitCode: s.exitCode,
    signal: s.signal,
    limits: s.limits,
    error: s.error,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    ...(s.power ? { power: s.power } : {}),
    ...(s.health ? { health: s.health } : {}),
    ...(s.image ? { image: s.image } : {}),
    ...(s.restarts ? { restarts: s.restarts } : {}),
    ...backoffCarried(prev, s),
    updatedAt: now,
  };
}

/**
 * recordTaskStatus stores what an executor reported about one task; returns an event if it changed
 * state. The death of a task in a crash loop returns none: the pass that notes it tells it
 * (`task-crash-loop`, restart-backoff.ts), one event per death rather than three.
 */
export function recordTaskStatus(work: StateWork, agent: string, s: TaskStatus, now: string): WorkEvent | undefined {
  const prev = work.tasks.get(s.task);
  const rec = taskRecordFrom(agent, s, prev, now);
  // only what changed is written: a status of 100k unchanged tasks writes nothing about them
  if (!prev || !sameTask(prev, rec)) work.tasks.put(rec);
  if (prev && prev.state === 'running' && s.state !== 'running' && !(rec.backoff && rec.backoff.restarts >= 1)) {
    const how = s.signal ? `killed by ${s.signal}` : s.exitCode !== undefined ? `exit code ${s.exitCode}` : 'gone';
    return { at: now, kind: `task-${s.state}`, task: s.task, agent, message: `${s.task} ${s.state} on ${agent} (${how})` };
  }
  return undefined;
}

function agentRecordFrom(spec: AgentSpec, reg: AgentRegistration, now: string): AgentRecord {
  const discovered: ResourceVector = {
    cpus: reg.resources.cpus,
    mem: reg.resources.mem,
    disk: reg.resources.disk,
    gpus: reg.resources.gpus,
    scalars: reg.resources.scalars ?? {},
  };
  return {
    name: spec.name,
    idc: spec.idc,
    cluster: spec.cluster,
    state: 'ready',
    resources: effectiveResources(spec.resources, discovered),
    discovered,
    attributes: { ...reg.attributes, ...spec.attributes },
    drivers: reg.drivers,
    limits: reg.limits,
    lastSeen: now,
  };
}

/** StrayTask is a second copy of a task found on an agent while the task's record lives on another agent. */
export interface StrayTask {
  task: string;
  /** agent holds the stray copy (it must be stopped there). */
  agent: string;
  /** keptOn is the agent whose copy stays. */
  keptOn: string;
  status: TaskStatus;
}

const liveState = (s: TaskStatus): boolean => s.state === 'running' || s.state === 'pending';

/**
 * pickPrimaries decides, for every task id reported by more than one reached agent, which copy is
 * the task: a live copy on the agent the state already names, else any live copy (first agent by
 * name), else the recorded agent's. Every other copy is a stray.
 */
function pickPrimaries(work: StateWork, reportedBy: Map<string, { agent: string; status: TaskStatus }[]>): Map<string, string> {
  const primary = new Map<string, string>();
  for (const [task, copies] of reportedBy) {
    if (copies.length < 2) continue;
    const recAgent = work.tasks.get(task)?.agent;
    const rank = (c: { agent: string; status: TaskStatus }) => (liveState(c.status) ? 0 : 2) + (c.agent === recAgent ? 0 : 1);
    const best = [...copies].sort((a, b) => rank(a) - rank(b) || (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0))[0]!;
    primary.set(task, best.agent);
  }
  return primary;
}

/**
 * ownership splits what one agent reports into our tasks and foreign ones. A task that carries a
 * state id is ours when it is our state's. A legacy task (started before tasks carried a state id)
 * is ours only when our state records it on this agent and the agent reports no copy of ours with that id;
 * else it is left alone as foreign with an unknown state (''). Foreign tasks are never recorded,
 * adopted, counted as strays or stopped. Our job runs' tasks (labelled with their run) are in neither
 * list: the runs table records them, and snapshotOf counts what they hold.
 */
export function ownership(work: StateWork, ourState: string, agent: string, reported: TaskStatus[]): { own: TaskStatus[]; foreign: ForeignTask[] } {
  const own: TaskStatus[] = [];
  const foreign: ForeignTask[] = [];
  const oursById = new Set(reported.filter((s) => s.stateId === ourState).map((s) => s.task));
  for (const s of reported) {
    const mine = s.stateId !== undefined ? s.stateId === ourState : work.tasks.get(s.task)?.agent === agent && !oursById.has(s.task);
    if (mine) {
      // a job run's task is the scheduler of runs' (src/jobs), never a plan task to adopt or stop
      if (!s.labels?.run) own.push(s);
      continue;
    }
    foreign.push({
      task: s.task,
      state: s.stateId ?? '',
      driver: s.driver,
      taskState: s.state,
      ...(s.pid !== undefined ? { pid: s.pid } : {}),
      ...(s.resources ? { resources: s.resources } : {}),
    });
  }
  return { own, foreign };
}

/** foreignTaskError is the E_FOREIGN_TASK error for an operation on a task another state runs. */
export function foreignTaskError(task: string, f: ForeignTask, agent: string): FactoryError {
  const whose = f.state ? `another factory state (${f.state})` : 'no factory state this one knows (it was started before tasks carried a state id)';
  return new FactoryError(`task ${task} on agent ${agent} belongs to ${whose}: it is listed here, never stopped or changed`, {
    code: 'E_FOREIGN_TASK',
    hint: f.state ? `act on it with the state whose id is ${f.state} (factory status --json shows a state's id)` : undefined,
  });
}

/**
 * refuseForeign throws E_FOREIGN_TASK when `want` names no task of ours but a foreign task that an
 * agent of ours reported (exact id, as the other state knows it).
 */
export function refuseForeign(view: { tasks: { has(k: string): boolean }; agents: { values(): AgentRecord[] } }, want: string): void {
  if (view.tasks.has(want)) return;
  for (const a of view.agents.values()) {
    const f = a.foreign?.find((t) => t.task === want);
    if (f) throw foreignTaskError(want, f, a.name);
  }
}

/**
 * observe folds the pool's registrations into the state: agents reached become ready with their
 * discovered capacity; tasks they report are recorded (adopted when unknown); tasks recorded on a
 * reached agent that it no longer has are marked exited; agents not reached are marked lost, and so
 * are the tasks recorded on them. When two reached agents report the same task id (an agent came
 * back after its task was rescheduled elsewhere) one copy is kept (see pickPrimaries) and the others
 * are returned in `out.strays` for the caller to stop: nothing runs twice.
 * statuses, when given, override the registration's task list (a fresher inspect).
 * Tasks of other states (see ownership) are listed on their agent's record as `foreign`, nothing more.
 */
export function observe(
  work: StateWork,
  inv: InventorySpec,
  pool: AgentPool,
  now: string,
  statuses?: Map<string, TaskStatus[]>,
  out?: { strays: StrayTask[] },
): WorkEvent[] {
  const events: WorkEvent[] = [];
  const split = new Map<string, { own: TaskStatus[]; foreign: ForeignTask[] }>();
  for (const [name, c] of pool.connected) split.set(name, ownership(work, pool.stateId, name, statuses?.get(name) ?? c.registration.tasks));
  const reportedBy = new Map<string, { agent: string; status: TaskStatus }[]>();
  for (const [name] of pool.connected) {
    for (const s of split.get(name)!.own) {
      const list = reportedBy.get(s.task) ?? [];
      list.push({ agent: name, status: s });
      reportedBy.set(s.task, list);
    }
  }
  const primary = pickPrimaries(work, reportedBy);
  for (const [name, c] of pool.connected) {
    const prevAgent = work.agents.get(name);
    const { own, foreign } = split.get(name)!;
    work.agents.put({ ...agentRecordFrom(c.spec, c.registration, now), ...drainMarkOf(prevAgent), ...(foreign.length ? { foreign } : {}) });
    if (prevAgent && prevAgent.state !== 'ready') {
      events.push({ at: now, kind: 'agent-back', agent: name, message: `agent ${name} is back` });
    }
    const seen = new Set<string>();
    for (const s of own) {
      const keptOn = primary.get(s.task);
      if (keptOn !== undefined && keptOn !== name) {
        out?.strays.push({ task: s.task, agent: name, keptOn, status: s });
        events.push({ at: now, kind: 'task-duplicate', task: s.task, agent: name, message: `${s.task} also found on ${name}; the copy on ${keptOn} is kept` });
        continue;
      }
      seen.add(s.task);
      if (!work.tasks.has(s.task)) events.push({ at: now, kind: 'task-adopted', task: s.task, agent: name, message: `adopted ${s.task} found on ${name}` });
      const ev = recordTaskStatus(work, name, s, now);
      if (ev) events.push(ev);
    }
    for (const rec of work.tasks.values()) {
      if (rec.agent !== name || seen.has(rec.task)) continue;
      if (rec.state === 'running' || rec.state === 'pending') {
        events.push({ at: now, kind: 'task-missing', task: rec.task, agent: name, message: `${rec.task} is no longer on ${name}` });
      } else if (rec.state === 'exited' && rec.pid === undefined && rec.power === undefined && rec.error !== undefined) {
        continue; // already recorded as gone: nothing to write
      }
      // a VM that is gone has no power state
      const { power: _power, pid: _pid, ...rest } = rec;
      work.tasks.put({ ...rest, state: 'exited', error: rec.error ?? 'not found on the agent', updatedAt: now });
    }
  }
  for (const [name, f] of pool.failed) {
    const prev = work.agents.get(name);
    if (!prev || prev.state !== 'lost') {
      events.push({ at: now, kind: 'agent-lost', agent: name, message: `agent ${name} unreachable: ${f.error}` });
    }
    work.agents.put({
      name,
      idc: f.spec.idc,
      cluster: f.spec.cluster,
      state: 'lost',
      resources: prev?.resources ?? effectiveResources(f.spec.resources),
      discovered: prev?.discovered,
      attributes: { ...(prev?.attributes ?? {}), ...f.spec.attributes },
      drivers: prev?.drivers ?? f.spec.drivers ?? [],
      limits: prev?.limits,
      lastSeen: prev?.lastSeen,
      error: f.error,
      ...drainMarkOf(prev),
      // the last list seen: what other states ran there is not known better until it is back
      ...(prev?.foreign?.length ? { foreign: prev.foreign } : {}),
    });
    // what runs there is unknown until it is back: its live tasks are lost (and get rescheduled)
    for (const rec of work.tasks.values()) {
      if (rec.agent !== name || (rec.state !== 'running' && rec.state !== 'pending')) continue;
      work.tasks.put({ ...rec, state: 'lost', updatedAt: now });
      events.push({ at: now, kind: 'task-lost', task: rec.task, agent: name, message: `${rec.task} is lost with agent ${name}` });
    }
  }
  for (const e of events) work.event(e);
  return events;
}

/** drainMarkOf carries an agent's drain marker over when its record is rebuilt from a fresh observation. */
export function drainMarkOf(prev: AgentRecord | undefined): Pick<AgentRecord, 'draining' | 'drainingSince'> {
  return prev?.draining ? { draining: true, ...(prev.drainingSince ? { drainingSince: prev.drainingSince } : {}) } : {};
}

/**
 * lessForeign is an agent's capacity minus what live foreign tasks (other states' tasks on it) asked
 * for: they really use it, and our scheduler must not count it as free.
 */
export function lessForeign(capacity: ResourceVector, foreign: ForeignTask[] | undefined): ResourceVector {
  const live = (foreign ?? []).filter((f) => (f.taskState === 'running' || f.taskState === 'pending') && f.resources);
  if (live.length === 0) return capacity;
  const out: ResourceVector = { ...capacity, scalars: { ...capacity.scalars } };
  for (const f of live) {
    const r = f.resources!;
    out.cpus = Math.max(0, out.cpus - (r.cpus ?? 0));
    out.mem = Math.max(0, out.mem - (r.mem ?? 0));
    out.disk = Math.max(0, out.disk - (r.disk ?? 0));
    out.gpus = Math.max(0, out.gpus - (r.gpus ?? 0));
    for (const [k, v] of Object.entries(r.scalars ?? {})) if (k in out.scalars) out.scalars[k] = Math.max(0, out.scalars[k]! - v);
  }
  return out;
}

/** OfflineDiscovery supplies capacity and drivers, read in-process, for local agents never connected. */
export type OfflineDiscovery = (spec: AgentSpec) => { resources: ResourceVector; drivers: Driver[] } | undefined;

/**
 * snapshotOf builds the scheduler's agents and actual tasks from the inventory and the state.
 * Online, agent records come from observe(); offline (what-if), from declared capacity, the last
 * recorded discovery, or `offlineDiscovery` for local agents.
 */
export function snapshotOf(
  inv: InventorySpec,
  work: StateWork,
  opts: { offline: boolean; offlineDiscovery?: OfflineDiscovery },
): { agents: AgentSnapshot[]; actual: ActualTask[] } {
  const agents: AgentSnapshot[] = inv.agents.map((spec) => {
    const rec = work.agents.get(spec.name);
    if (!opts.offline && rec) {
      return {
        name: spec.name,
        idc: spec.idc,
        cluster: spec.cluster,
        state: rec.draining && rec.state === 'ready' ? 'draining' : rec.state,
        capacity: lessForeign(rec.resources, rec.foreign),
        attributes: rec.attributes,
        drivers: rec.drivers,
      };
    }
    const local = rec?.discovered ? undefined : opts.offlineDiscovery?.(spec);
    const discovered = rec?.discovered ?? local?.resources;
    return {
      name: spec.name,
      idc: spec.idc,
      cluster: spec.cluster,
      state: rec?.draining ? 'draining' : 'ready',
      capacity: effectiveResources(spec.resources, discovered),
      attributes: { ...(rec?.attributes ?? {}), ...spec.attributes },
      drivers: spec.drivers ?? rec?.drivers ?? local?.drivers ?? ALL_DRIVERS,
    };
  });
  const actual: ActualTask[] = work.tasks.values().map((t) => ({
    task: t.task,
    plan: t.plan,
    group: t.group,
    project: t.project,
    agent: t.agent,
    driver: t.driver,
    specHash: t.specHash,
    state: t.state,
    resources: t.resources,
  }));
  // job runs still going hold their resources on their agents (plan '#runs': outside any plan in scope)
  for (const r of work.runs.values()) {
    if ((r.state !== 'running' && r.state !== 'claimed') || !r.agent) continue;
    const job = work.jobs.get(r.job);
    if (!job) continue;
    actual.push({ task: r.task ?? r.id, plan: '#runs', group: r.job, project: r.project, agent: r.agent, driver: job.spec.driver, specHash: '', state: 'running', resources: job.spec.resources });
  }
  return { agents, actual };
}
