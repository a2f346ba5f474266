/**
 * What the dashboard can do to the factory, as one interface the container calls after a
 * confirmation. controlActions binds it to src/control (the same functions as the CLI commands);
 * tests pass fakes.
 */
import { drainAgent } from '../control/drain.js';
import { logs } from '../control/status.js';
import { restartTask } from '../control/tasks.js';
import { vmAction } from '../control/vms.js';

/** VmPowerAction is a VM power action the dashboard offers. */
export type VmPowerAction = 'start' | 'stop' | 'reboot';

/** DashboardActions are the operations behind the dashboard's confirmed keys; each resolves to a one-line outcome. */
export interface DashboardActions {
  restartTask(task: string): Promise<string>;
  drain(agent: string, undo: boolean, progress: (line: string) => void): Promise<string>;
  /** vm is absent when this build has no VM control: the dashboard then says so instead of offering it. */
  vm?: (task: string, action: VmPowerAction) => Promise<string>;
  /** logs streams a task's recent output and follows it until the signal aborts. */
  logs(task: string, onData: (stream: 'stdout' | 'stderr', chunk: string) => void, signal: AbortSignal): Promise<void>;
}

/** controlActions returns DashboardActions that act through src/control on the given state and inventory. */
export function controlActions(opts: { stateDir: string; inventoryPath?: string }): DashboardActions {
  const base = { stateDir: opts.stateDir, inventoryPath: opts.inventoryPath };
  return {
    async restartTask(task) {
      const r = await restartTask({ ...base, task });
      return r.state === 'running' ? `restarted ${r.task} on ${r.agent}${r.pid ? ` (pid ${r.pid})` : ''}` : `${r.task} on ${r.agent}: ${r.state}${r.error ? `: ${r.error}` : ''}`;
    },
    async drain(agent, undo, progress) {
      const r = await drainAgent({ ...base, agent, undo, progress });
      if (!r.draining) return `${agent} accepts new tasks again`;
      const moved = `${r.moved.length} task${r.moved.length === 1 ? '' : 's'} moved`;
      return r.remaining.length ? `${agent} draining: ${moved}, ${r.remaining.length} still there` : `${agent} draining: ${moved}, none left`;
    },
    async vm(task, action) {
      const r = await vmAction({ ...base, task, action });
      return `${r.task} on ${r.agent}: ${r.power}`;
    },
    async logs(task, onData, signal) {
      await logs({ ...base, task, follow: true, tail: 200, stream: 'both', onData, signal });
    },
  };
}
