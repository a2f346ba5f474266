/**
 * How a drain moves tasks: the scheduler keeps live tasks on a draining agent and only places
 * nothing new there, so the control side presents those tasks to it as lost. The scheduler then
 * reschedules each one elsewhere and stops the old copy only when the replacement is placed; a task
 * that fits nowhere else keeps running where it is and is reported unplaced.
 */
import type { ActualTask, AgentSnapshot, DesiredGroup } from '../scheduler/types.js';

/**
 * movedOffDraining returns `actual` with every live task on a draining agent marked `lost`, so the
 * scheduler moves it. Tasks of `everyAgent` groups stay (they belong to their agent), and so do
 * tasks of plans not being applied (their plan is not scheduled in this pass).
 */
export function movedOffDraining(actual: ActualTask[], agents: AgentSnapshot[], groups: DesiredGroup[]): ActualTask[] {
  const draining = new Set(agents.filter((a) => a.state === 'draining').map((a) => a.name));
  if (draining.size === 0) return actual;
  const movable = new Set(groups.filter((g) => !g.everyAgent).map((g) => `${g.plan}/${g.group}`));
  return actual.map((t) =>
    draining.has(t.agent) && movable.has(`${t.plan}/${t.group}`) && (t.state === 'running' || t.state === 'pending') ? { ...t, state: 'lost' } : t,
  );
}
