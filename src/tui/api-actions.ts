/**
 * The dashboard's actions when it watches a control host (`factory dashboard --control URL`): the
 * same DashboardActions as controlActions, each one a call of the host's HTTP API, so the host runs
 * it (one write at a time, recorded with the caller's token as `by`). Kept apart from actions.ts so
 * that a remote dashboard never loads src/control.
 */
import type { ApiClient } from '../client/http.js';
import { FactoryError } from '../errors.js';
import type { RunRecord } from '../jobs/types.js';
import type { DashboardActions } from './actions.js';
import { jobPath } from './api-jobs.js';
import { runNowOutcome, suspendOutcome, type JobView } from './jobs-model.js';

/** taskPath is a task id as one URL segment (its slashes encoded, as the API asks). */
const taskPath = (task: string) => encodeURIComponent(task);

interface RestartAnswer {
  task: string;
  agent: string;
  state: string;
  pid?: number;
  error?: string;
}

interface DrainAnswer {
  agent: string;
  draining: boolean;
  moved: { task: string; to: string }[];
  remaining: string[];
}

interface VmAnswer {
  task: string;
  agent: string;
  power: string;
}

/** apiActions returns DashboardActions that act through a control host's HTTP API. */
export function apiActions(client: ApiClient): DashboardActions {
  return {
    async restartTask(task) {
      const r = await client.postJson<RestartAnswer>(`/v1/tasks/${taskPath(task)}/restart`, undefined);
      return r.state === 'running' ? `restarted ${r.task} on ${r.agent}${r.pid ? ` (pid ${r.pid})` : ''}` : `${r.task} on ${r.agent}: ${r.state}${r.error ? `: ${r.error}` : ''}`;
    },
    async drain(agent, undo, progress) {
      progress(`${undo ? 'undraining' : 'draining'} ${agent} on ${client.current}`);
      const r = await client.postJson<DrainAnswer>(`/v1/agents/${encodeURIComponent(agent)}/${undo ? 'undrain' : 'drain'}`, undefined);
      if (!r.draining) return `${agent} accepts new tasks again`;
      const moved = `${r.moved.length} task${r.moved.length === 1 ? '' : 's'} moved`;
      return r.remaining.length ? `${agent} draining: ${moved}, ${r.remaining.length} still there` : `${agent} draining: ${moved}, none left`;
    },
    async vm(task, action) {
      const r = await client.postJson<VmAnswer>(`/v1/vms/${taskPath(task)}/${action}`, undefined);
      return `${r.task} on ${r.agent}: ${r.power}`;
    },
    async logs(task, onData, signal) {
      try {
        await client.stream('GET', `/v1/tasks/${taskPath(task)}/logs?follow=true&tail=200&stream=both`, undefined, {
          signal,
          // the host sends {} every 5 s while a followed task is quiet
          idleTimeoutMs: 30_000,
          onLine: (obj) => {
            if (typeof obj.stdout === 'string') onData('stdout', obj.stdout);
            if (typeof obj.stderr === 'string') onData('stderr', obj.stderr);
          },
        });
      } catch (err) {
        // closing the pane aborts the call: that is the end of following, not a failure
        if (signal.aborted && (err as FactoryError).code === 'E_ABORTED') return;
        throw err;
      }
    },
    async runJob(job) {
      return runNowOutcome((await client.postJson<{ run: RunRecord }>(`${jobPath(job)}/run`, undefined)).run);
    },
    async suspendJob(job, suspend) {
      return suspendOutcome((await client.postJson<{ job: JobView }>(`${jobPath(job)}/${suspend ? 'suspend' : 'resume'}`, undefined)).job);
    },
  };
}
