/**
 * Draining an agent: `factory agents drain NAME` records a marker on the agent (it survives every
 * later observation), then re-applies the recorded plans so the agent's tasks move elsewhere
 * (see drain-moves.ts) while nothing new lands on it. `--undo` clears the marker.
 */
import { FactoryError } from '../errors.js';
import { resolveInventory } from '../spec/index.js';
import { stateOf, withStateWork } from './state-handle.js';
import { effectiveResources } from './snapshot.js';
import { applyPlans, type ApplyResult } from './plan.js';
import type { PlanSpec } from '../spec/model.js';

/** DrainOptions select the agent, the direction and whether the recorded plans are re-applied. */
export interface DrainOptions {
  stateDir: string;
  inventoryPath?: string;
  agent: string;
  /** undo clears the drain marker instead of setting it. */
  undo?: boolean;
  /** apply re-applies the recorded plans afterwards (default true), which moves the tasks. */
  apply?: boolean;
  progress?: (line: string) => void;
  /** by is who asks (recorded on the events). */
  by?: string;
}

/** DrainResult says what the drain recorded and what the re-apply moved. */
export interface DrainResult {
  agent: string;
  draining: boolean;
  /** plans are the recorded plans re-applied (by file name); skipped are recorded ones without a spec (applied by an older factory). */
  plans: string[];
  skipped: string[];
  /** moved lists the tasks stopped on the agent because a replacement was placed elsewhere. */
  moved: { task: string; to: string }[];
  /** remaining lists the live tasks still on the agent (nowhere else fits them, or everyAgent groups). */
  remaining: string[];
  apply?: ApplyResult;
}

/** setDrainMark records (or clears) the drain marker of an agent in the state, under the state lock. */
export async function setDrainMark(opts: { stateDir: string; inventoryPath?: string; agent: string; undo?: boolean; by?: string }): Promise<void> {
  const inventory = await resolveInventory(opts.inventoryPath);
  const spec = inventory.agents.find((a) => a.name === opts.agent);
  if (!spec) {
    throw new FactoryError(`no agent '${opts.agent}' in the inventory ${inventory.file}`, {
      code: 'E_AGENT_UNKNOWN',
      hint: `known agents: ${inventory.agents.map((a) => a.name).slice(0, 10).join(', ')}${inventory.agents.length > 10 ? ', …' : ''}`,
    });
  }
  await withStateWork(opts.stateDir, { purpose: opts.undo ? 'agents drain --undo' : 'agents drain' }, opts.by, async (work) => {
    const now = new Date().toISOString();
    const rec = work.agents.get(spec.name);
    if (opts.undo) {
      if (rec) {
        const { draining: _d, drainingSince: _s, ...rest } = rec;
        work.agents.put(rest);
      }
      work.event({ at: now, kind: 'agent-undrained', agent: spec.name, message: `agent ${spec.name} accepts new tasks again` });
    } else {
      if (rec) {
        work.agents.put({ ...rec, draining: true, drainingSince: rec.draining ? rec.drainingSince : now });
      } else {
        // never observed yet: a record from the inventory that the next observation fills in
        work.agents.put({
          name: spec.name, idc: spec.idc, cluster: spec.cluster, state: 'ready',
          resources: effectiveResources(spec.resources), attributes: { ...spec.attributes }, drivers: spec.drivers ?? [],
          draining: true, drainingSince: now,
        });
      }
      work.event({ at: now, kind: 'agent-draining', agent: spec.name, message: `agent ${spec.name} is draining: its tasks move elsewhere` });
    }
  });
}

/** drainAgent sets or clears the drain marker, then re-applies the recorded plans so tasks move. */
export async function drainAgent(opts: DrainOptions): Promise<DrainResult> {
  await setDrainMark(opts);
  const state = await stateOf(opts.stateDir);
  // the plans as applied (recorded with their spec), not the plan files as they are now: an edited
  // plan file reaches the agents when it is applied, never as a side effect of a drain
  const recorded = state.view().list('plans');
  const plans: string[] = [];
  const skipped: string[] = [];
  const specs: PlanSpec[] = [];
  for (const rec of recorded) {
    if (rec.spec) {
      specs.push(rec.spec);
      plans.push(rec.file);
    } else {
      skipped.push(rec.file);
      opts.progress?.(`warning: plan ${rec.name} was applied by an older factory and has no recorded spec; apply it again to move its tasks`);
    }
  }
  let apply: ApplyResult | undefined;
  if (opts.apply !== false && specs.length > 0) {
    opts.progress?.(`re-applying ${specs.length} recorded plan${specs.length === 1 ? '' : 's'}`);
    apply = await applyPlans({ planPaths: [], planSpecs: specs, stateDir: opts.stateDir, inventoryPath: opts.inventoryPath, progress: opts.progress, by: opts.by, startDeployments: false });
  }
  await state.refresh();
  const moved = (apply?.stops ?? [])
    .filter((s) => s.agent === opts.agent && s.reason === 'reschedule')
    .map((s) => ({ task: s.task, to: apply?.placements.find((p) => p.task === s.task)?.agent ?? '?' }));
  const remaining = state.view().list('tasks')
    .filter((t) => t.agent === opts.agent && (t.state === 'running' || t.state === 'pending'))
    .map((t) => t.task)
    .sort();
  return { agent: opts.agent, draining: !opts.undo, plans, skipped, moved, remaining, apply };
}
