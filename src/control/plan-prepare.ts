/**
 * Preparing a plan operation: load the plans and the inventory, take the state (and its lock for
 * apply and destroy), observe the agents, stop stray copies, and run the scheduler. diff stops here.
 */
import diagnostics from 'node:diagnostics_channel';
import { FactoryError } from '../errors.js';
import { loadPlans, resolveInventory } from '../spec/index.js';
import { loadPlanText } from '../spec/load.js';
import type { InventorySpec, PlanSpec } from '../spec/model.js';
import { schedule } from '../scheduler/index.js';
import type { SchedulePlan } from '../scheduler/types.js';
import type { StateBackend } from '../state/backend.js';
import { StateWork } from '../state/work.js';
import { stateOf } from './state-handle.js';
import { AgentPool } from './agents.js';
import { desiredGroupsOf } from './desired.js';
import { observe, snapshotOf, type OfflineDiscovery, type StrayTask } from './snapshot.js';
import { stopStrays } from './strays.js';
import { localCapacities } from './local-capacity.js';
import { movedOffDraining } from './drain-moves.js';
import { diffView, type DiffResult } from './plan-view.js';
import { deploymentPass } from '../deploy/pass.js';
import { noteBackoffs, type BackoffNotes } from './restart-backoff.js';

/**
 * PLAN_PHASES_CHANNEL is the diagnostics channel (node:diagnostics_channel) on which a plan operation
 * publishes `{phase, start, end, cpuStart, cpuEnd}` (performance.now() ms, and the process's CPU time so
 * far in ms) for its phases: `load` (read and validate the
 * plans and the inventory), `snapshot` (state + inventory → the scheduler's input), `schedule` and
 * `view` (the DiffResult document). Nothing is published without a subscriber; `npm run bench`
 * subscribes to print the split of `plan diff` end to end.
 */
export const PLAN_PHASES_CHANNEL = 'factory:plan-phases';
const phases = diagnostics.channel(PLAN_PHASES_CHANNEL);

/** PlanPhase is one message of PLAN_PHASES_CHANNEL. */
export interface PlanPhase {
  phase: 'load' | 'snapshot' | 'schedule' | 'view';
  start: number;
  end: number;
  cpuStart: number;
  cpuEnd: number;
}

/** phaseStart is when a phase starts: performance.now() and the process's CPU time, in ms. */
function phaseStart(): { at: number; cpu: number } {
  const u = process.cpuUsage();
  return { at: performance.now(), cpu: (u.user + u.system) / 1000 };
}

function phaseEnded(phase: PlanPhase['phase'], start: { at: number; cpu: number }): void {
  if (!phases.hasSubscribers) return;
  const end = phaseStart();
  phases.publish({ phase, start: start.at, end: end.at, cpuStart: start.cpu, cpuEnd: end.cpu } satisfies PlanPhase);
}

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
  /**
   * startDeployments (default true) lets apply start a deployment for a changed group (src/deploy);
   * the passes that converge to the recorded plans (supervision, drain) only step the ones there are.
   */
  startDeployments?: boolean;
}

/** Prepared is a scheduled plan operation: what was loaded and observed, the schedule, and the connections to carry it out. */
export interface Prepared {
  plans: PlanSpec[];
  inventory: InventorySpec;
  plan: SchedulePlan;
  pool?: AgentPool;
  state: StateBackend & { dir: string };
  work: StateWork;
  diff: DiffResult;
  /** held are the dead tasks whose restart backoff has not run out, each with the time it does (kept this pass). */
  held: BackoffNotes;
}

/** prepare loads the plans and the inventory and plans against the agents; for apply and destroy it takes the state lock (released on failure). */
export async function prepare(opts: PlanOptions, mode: 'diff' | 'apply' | 'destroy'): Promise<Prepared> {
  const loading = phaseStart();
  const plans = [...(await loadPlans(opts.planPaths)), ...(opts.planTexts ?? []).map((t) => loadPlanText(t.text, t.file)), ...(opts.planSpecs ?? [])];
  const names = new Set<string>();
  for (const p of plans) {
    if (names.has(p.name)) throw new FactoryError(`two plans are named '${p.name}' (${plans.filter((q) => q.name === p.name).map((q) => q.file).join(', ')})`, { code: 'E_PLAN_DUPLICATE' });
    names.add(p.name);
  }
  const inventory = await resolveInventory(opts.inventoryPath);
  phaseEnded('load', loading);
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
export async function planAgainst(state: StateBackend & { dir: string }, work: StateWork, plans: PlanSpec[], inventory: InventorySpec, opts: PlanOptions, mode: 'diff' | 'apply' | 'destroy'): Promise<Prepared> {
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
    const snapshotting = phaseStart();
    const locals = offline ? await localCapacities(inventory, state.dir) : new Map();
    const offlineDiscovery: OfflineDiscovery = (spec) => locals.get(spec.name);
    // deaths are noted, and restarts not due yet held, before the scheduler (which has no clock) runs
    const held: BackoffNotes = mode === 'destroy' ? new Map() : noteBackoffs(work, plans, Date.now());
    const { agents, actual } = snapshotOf(inventory, work, { offline, offlineDiscovery });
    const groups = mode === 'destroy' ? [] : desiredGroupsOf(plans);
    const observed = movedOffDraining(held.size ? actual.map((t) => (held.has(t.task) ? { ...t, restartHeld: true } : t)) : actual, agents, groups);
    // a changed group is rolled by a deployment: the scheduler sees it as the deployment's step presents it
    const deploy = deploymentPass({ work, plans, inventory, groups, actual: observed, mode, start: opts.startDeployments !== false, now: Date.now(), by: opts.by });
    phaseEnded('snapshot', snapshotting);
    const scheduling = phaseStart();
    const input = { agents, plans: plans.map((p) => p.name), seed: opts.seed ?? 1, projects: inventory.projects };
    // the documents say where the plans converge to (every task a deployment will replace, as update)
    const converged = schedule({ ...input, groups: deploy.plans === plans ? groups : desiredGroupsOf(deploy.plans), actual: observed });
    // what is carried out now is this step of each deployment
    const plan = deploy.shaped ? schedule({ ...input, groups: deploy.groups, actual: deploy.actual }) : converged;
    deploy.noteUnplaced(plan);
    if (mode === 'destroy') for (const s of plan.stop) s.reason = 'destroy';
    phaseEnded('schedule', scheduling);
    const viewing = phaseStart();
    const diff = diffView(inventory, deploy.plans, converged, offline, pool, held);
    phaseEnded('view', viewing);
    return { plans: deploy.plans, inventory, plan, pool, state, work, held, diff: deploy.views.length > 0 ? { ...diff, deployments: deploy.views } : diff };
  } catch (err) {
    await pool?.close();
    throw err;
  }
}
