/**
 * What the dashboard can do to the factory, as one interface the container calls after a
 * confirmation. controlActions binds it to src/control (the same functions as the CLI commands);
 * tests pass fakes.
 */
import { drainAgent } from '../control/drain.js';
import { setSuspended } from '../control/jobs.js';
import { logs } from '../control/status.js';
import { restartTask } from '../control/tasks.js';
import { vmAction } from '../control/vms.js';
import { FactoryError } from '../errors.js';
import type { RunRecord } from '../jobs/types.js';
import { runNowOutcome, suspendOutcome } from './jobs-model.js';

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
  /** runJob starts a run of a job now, outside its schedule (its concurrency applies); the control host's scheduler of runs claims it. */
  runJob(job: string): Promise<string>;
  /** suspendJob suspends a job (its slots are skipped), or resumes it. */
  suspendJob(job: string, suspend: boolean): Promise<string>;
}

/** JobsHost is the control host serving a local state, as far as running a job now needs it. */
export interface JobsHost {
  runJob(job: string, force: boolean): Promise<RunRecord>;
}

/**
 * controlActions returns DashboardActions that act through src/control on the given state and
 * inventory. A run now needs the control host that serves the state (`host`, found as `jobs run`
 * finds it); without one it says so.
 */
export function controlActions(opts: { stateDir: string; inventoryPath?: string; host?: () => Promise<JobsHost | undefined> }): DashboardActions {
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
    async runJob(job) {
      const host = await opts.host?.();
      if (!host) {
        throw new FactoryError(`jobs run on a control host, and none serves this state (start one: factory control serve --state ${opts.stateDir})`, { code: 'E_NO_CONTROL' });
      }
      return runNowOutcome(await host.runJob(job, false));
    },
    async suspendJob(job, suspend) {
      return suspendOutcome(await setSuspended(opts.stateDir, job, suspend, undefined));
    },
  };
}
