/**
 * Who moves deployments forward: on a control host, DeploymentRunner steps every deployment in
 * progress on its own timer (a pass over the plans with one, src/control/reconcile.ts, every
 * DEPLOY_TICK_MS, whatever --reconcile-interval says); without a control host, `plan apply` carries its
 * deployments out itself (driveDeployments) until they end. Both only read where a deployment stands
 * from the state, so a host that restarts (or a new leader) picks them up where they were.
 */
import { AgentPool, WarmAgents } from '../control/agents.js';
import { reconcileRecorded } from '../control/reconcile.js';
import { stateOf } from '../control/state-handle.js';
import type { StateBackend } from '../state/backend.js';
import { isActive, type DeploymentRecord } from './types.js';

/** DEPLOY_TICK_MS is the time between two steps of the deployments in progress (env FACTORY_DEPLOY_TICK_MS). */
export const DEPLOY_TICK_MS = Number(process.env.FACTORY_DEPLOY_TICK_MS) > 0 ? Number(process.env.FACTORY_DEPLOY_TICK_MS) : 1000;

/** SOON_MS is the wait before the next step when a step did something (the tasks it started may count already). */
export const SOON_MS = 100;

/** activePlans names the plans that have a deployment in progress. */
export function activePlans(records: DeploymentRecord[]): Set<string> {
  return new Set(records.filter(isActive).map((d) => d.plan));
}

/** DeploymentRunner steps a control host's deployments in progress until stopped. */
export class DeploymentRunner {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;
  /** ticks counts the passes run over plans with deployments. */
  ticks = 0;

  constructor(private readonly opts: { stateDir: string; backend: StateBackend; log: (line: string) => void; tickMs?: number }) {}

  /** start checks for deployments in progress every tick (a look at the state in memory) and steps them. */
  start(): void {
    const tick = async () => {
      const step = this.tick();
      this.running = step;
      const acted = await step;
      this.running = undefined;
      // a step that started or stopped tasks is followed soon: with minHealthyTime 0 the next batch may go at once
      if (!this.stopped) this.timer = setTimeout(tick, acted ? SOON_MS : (this.opts.tickMs ?? DEPLOY_TICK_MS));
    };
    this.timer = setTimeout(tick, this.opts.tickMs ?? DEPLOY_TICK_MS);
  }

  /** tick steps the deployments in progress once (skipped while another write holds the state lock); true when it started or stopped tasks. */
  async tick(): Promise<boolean> {
    const plans = activePlans(this.opts.backend.view().list('deployments'));
    if (plans.size === 0) return false;
    this.ticks += 1;
    try {
      const r = await reconcileRecorded({ stateDir: this.opts.stateDir, plans, progress: (line) => this.opts.log(`deploy: ${line}`) });
      for (const p of r.passes) if (p.error) this.opts.log(`deploy: ${p.plans.join(', ')}: ${p.error}`);
      return r.passes.some((p) => p.results.length > 0);
    } catch (err) {
      this.opts.log(`deploy: step failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** stop ends the timer and waits for a running step. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/** followChain returns a deployment and the ones that took over from it (its revert), newest last. */
export function followChain(byId: (id: string) => DeploymentRecord | undefined, id: string): DeploymentRecord[] {
  const out: DeploymentRecord[] = [];
  let d = byId(id);
  while (d && out.length < 10) {
    out.push(d);
    d = d.revertedBy ? byId(d.revertedBy) : undefined;
  }
  return out;
}

/** chainDone says whether a deployment and its revert (if any) have ended (or, with `waiting`, stand waiting for an operator: promotion, resume). */
export function chainDone(chain: DeploymentRecord[], waiting = false): boolean {
  const last = chain.at(-1);
  return last !== undefined && (!isActive(last) || (waiting && (last.status === 'waiting-promotion' || last.status === 'paused')));
}

/** chainOk says whether a followed deployment succeeded (a revert, even a successful one, is a failure of the deployment). */
export function chainOk(chain: DeploymentRecord[]): boolean {
  return chain.length === 1 && chain[0]!.status === 'succeeded';
}

/** progressLine is one line about where a deployment stands. */
export function progressLine(d: DeploymentRecord): string {
  const healthy = d.tasks.filter((t) => t.state === 'healthy').length;
  const pending = d.tasks.filter((t) => t.state === 'pending').length;
  const what = d.revertOf ? `revert of ${d.revertOf}` : `${d.plan}/${d.group}`;
  return `${d.id} ${what}: ${d.status}, ${healthy} new healthy, ${pending} starting, ${d.old} old${d.unplaced?.length ? `, ${d.unplaced.length} unplaced (${d.unplaced[0]!.reason})` : ''}${d.message && !isActive(d) ? ` — ${d.message}` : ''}`;
}

/**
 * followDeployments waits until each deployment (and its revert) has ended, calling `progress` with a
 * line whenever one moved; `read` returns the records as they stand (from the state, or a control host).
 */
export async function followDeployments(ids: string[], read: () => Promise<(id: string) => DeploymentRecord | undefined>, opts: { progress?: (line: string) => void; pollMs?: number; between?: () => Promise<void>; untilWaiting?: boolean }): Promise<DeploymentRecord[][]> {
  const said = new Map<string, string>();
  for (;;) {
    const byId = await read();
    const chains = ids.map((id) => followChain(byId, id));
    for (const d of chains.flat()) {
      const line = progressLine(d);
      if (said.get(d.id) !== line) {
        said.set(d.id, line);
        opts.progress?.(line);
      }
    }
    if (chains.every((c) => c.length === 0 || chainDone(c, opts.untilWaiting))) return chains;
    if (opts.between) await opts.between();
    else await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
  }
}

/**
 * driveDeployments carries deployments out without a control host (a one-shot `plan apply`): it steps
 * the plans that have them every tick, on warm agent sessions (the executors keep checking health
 * between the steps), until each has ended or waits for an operator (promotion, resume): nobody
 * else would carry them out, and nobody could promote while this waited.
 */
export async function driveDeployments(opts: { stateDir: string; ids: string[]; progress?: (line: string) => void; tickMs?: number }): Promise<DeploymentRecord[][]> {
  const state = await stateOf(opts.stateDir);
  const own = AgentPool.warm ? undefined : new WarmAgents();
  if (own) AgentPool.warm = own;
  let acted = true; // apply just started the first batch
  try {
    return await followDeployments(
      opts.ids,
      async () => {
        await state.refresh();
        const view = state.view();
        return (id) => view.get('deployments', id);
      },
      {
        progress: opts.progress,
        untilWaiting: true,
        between: async () => {
          await new Promise((r) => setTimeout(r, acted ? SOON_MS : (opts.tickMs ?? DEPLOY_TICK_MS)));
          const plans = activePlans(state.view().list('deployments'));
          if (plans.size === 0) return;
          const r = await reconcileRecorded({ stateDir: opts.stateDir, plans, lockTimeoutMs: 60_000, progress: (line) => opts.progress?.(line) });
          acted = r.passes.some((p) => p.results.length > 0);
        },
      },
    );
  } finally {
    if (own) {
      AgentPool.warm = undefined;
      await own.close();
    }
  }
}
