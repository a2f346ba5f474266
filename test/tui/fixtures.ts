/**
 * Small state documents for the dashboard's tests: two IDCs, three agents (one lost, one draining),
 * process, docker and VM tasks in several states, and a few events.
 */
import type { StateData, TaskRecord } from '../../src/state/types.js';

const GiB = 1024 ** 3;

/** task builds a task record with defaults. */
export function task(id: string, agent: string, over: Partial<TaskRecord> & { power?: string; health?: string } = {}): TaskRecord {
  const [plan, group] = id.split('/') as [string, string];
  return {
    task: id, plan, group, project: 'acme', agent, driver: 'process', specHash: 'h1', state: 'running',
    resources: { cpus: 1, mem: 2 * GiB, disk: 0, gpus: 0, scalars: {}, ports: [] },
    pid: 4242, updatedAt: '2026-01-01T00:00:00.000Z', ...over,
  } as TaskRecord;
}

/** sampleState is the dashboard tests' state document. */
export function sampleState(): StateData {
  const agent = (name: string, idc: string, cluster: string, state: 'ready' | 'lost', extra: object = {}) => ({
    name, idc, cluster, state,
    resources: { cpus: 8, mem: 16 * GiB, disk: 100 * GiB, gpus: name === 'h1' ? 2 : 0, scalars: {} },
    attributes: { rack: `r-${name}` }, drivers: ['process' as const, 'docker' as const, 'libvirt' as const],
    lastSeen: '2026-01-01T00:00:00.000Z', ...extra,
  });
  return {
    version: 1,
    agents: {
      h1: agent('h1', 'bj1', 'bj1-a', 'ready'),
      h2: agent('h2', 'bj1', 'bj1-a', 'ready', { draining: true }),
      h3: agent('h3', 'sh2', 'sh2-a', 'lost', { error: 'connect ECONNREFUSED' }),
    },
    tasks: {
      'web/api/0': task('web/api/0', 'h1', { driver: 'docker', health: 'healthy', pid: undefined }),
      'web/api/1': task('web/api/1', 'h2', { driver: 'docker', health: 'unhealthy', pid: undefined }),
      'web/api/10': task('web/api/10', 'h1', { driver: 'docker', health: 'healthy', pid: undefined }),
      'web/api/2': task('web/api/2', 'h1', { state: 'failed', exitCode: 3, pid: undefined, driver: 'docker' }),
      'farm/render/0': task('farm/render/0', 'h1', { driver: 'libvirt', power: 'running', pid: undefined, resources: { cpus: 4, mem: 8 * GiB, disk: 0, gpus: 1, scalars: {}, ports: [] } }),
      'batch/tick/0': task('batch/tick/0', 'h3', { state: 'lost', pid: undefined }),
    },
    plans: {},
    events: [
      { rev: 1, topic: 'plan', at: '2026-01-01T00:00:00.000Z', kind: 'plan-applied', message: 'applied web: 4 changes' },
      { rev: 2, topic: 'task', at: '2026-01-01T00:00:01.000Z', kind: 'task-failed', task: 'web/api/2', agent: 'h1', message: 'web/api/2 failed on h1 (exit code 3)' },
      { rev: 3, topic: 'agent', at: '2026-01-01T00:00:02.000Z', kind: 'agent-lost', agent: 'h3', message: 'agent h3 unreachable: connect ECONNREFUSED' },
    ],
  };
}
