/** The operator's transitions of a deployment (pause, resume, abort, and their refusals) and how the engine's step honours them. */
import { describe, expect, it } from 'vitest';
import { step, type GroupTask } from '../../src/deploy/engine.js';
import { abortRecord, checkOperable, pauseRecord, resumeRecord } from '../../src/deploy/operator.js';
import type { DeploymentRecord, DeploymentStatus } from '../../src/deploy/types.js';
import type { GroupSpec } from '../../src/spec/model.js';
import { DEFAULT_UPDATE } from '../../src/spec/update.js';
import { FactoryError } from '../../src/errors.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const spec = (cmd: string): GroupSpec => ({ name: 'web', kind: 'process', driver: 'process', count: 3, everyAgent: false, resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], strategy: 'binpack', command: [cmd], env: {}, stopGraceMs: 0, restart: 'always', line: 1, col: 1 });

function deployment(over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  const at = new Date(T0).toISOString();
  return {
    id: 'dep-0000000001', plan: 'p', group: 'web', project: 'default', fromHash: 'old', toHash: 'new', fromSpec: spec('v1'), toSpec: spec('v2'),
    policy: { ...DEFAULT_UPDATE, maxParallel: 1, maxSurge: 0, minHealthyTimeMs: 1000, healthyDeadlineMs: 60_000, progressDeadlineMs: 120_000 },
    status: 'running', promoted: true, tasks: [], old: 3, createdAt: at, updatedAt: at, progressAt: at, ...over,
  };
}

const task = (index: number, specHash: string, startedAt = T0 - 60_000): GroupTask => ({ task: `p/web/${index}`, index, specHash, state: 'running', startedAt: new Date(startedAt).toISOString() });

function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof FactoryError ? err.code : 'not a FactoryError';
  }
  return undefined;
}

describe('transitions', () => {
  it('pause: running or waiting-promotion → paused, with who asked', () => {
    expect(pauseRecord(deployment(), T0 + 5, 'fct_abc').status).toBe('paused');
    expect(pauseRecord(deployment(), T0 + 5, 'fct_abc').message).toBe('paused by fct_abc');
    expect(pauseRecord(deployment({ status: 'waiting-promotion', promoted: false }), T0).status).toBe('paused');
    expect(refusal(() => pauseRecord(deployment({ status: 'paused' }), T0))).toBe('E_DEPLOYMENT_STATE');
  });

  it('resume: paused → running, the progress deadline counted from the resume', () => {
    const r = resumeRecord(deployment({ status: 'paused' }), T0 + 600_000, 'local:me');
    expect(r).toMatchObject({ status: 'running', progressAt: new Date(T0 + 600_000).toISOString(), message: 'resumed by local:me' });
    expect(refusal(() => resumeRecord(deployment(), T0))).toBe('E_DEPLOYMENT_STATE');
    expect(refusal(() => resumeRecord(deployment({ status: 'waiting-promotion' }), T0))).toBe('E_DEPLOYMENT_STATE');
  });

  it('abort: any active status → aborted (final), finishedAt set', () => {
    for (const status of ['running', 'paused', 'waiting-promotion'] as DeploymentStatus[]) {
      const a = abortRecord(deployment({ status, old: 2 }), T0 + 1000);
      expect(a).toMatchObject({ status: 'aborted', finishedAt: new Date(T0 + 1000).toISOString() });
      expect(a.message).toContain('2 tasks left on the old spec');
    }
  });

  it('refuses every action on a finished deployment (E_DEPLOYMENT_FINISHED), and a revert without a previous spec', () => {
    for (const status of ['succeeded', 'failed', 'reverted', 'aborted'] as DeploymentStatus[]) {
      for (const action of ['pause', 'resume', 'abort', 'revert'] as const) expect(refusal(() => checkOperable(deployment({ status }), action)), `${action} ${status}`).toBe('E_DEPLOYMENT_FINISHED');
    }
    const { fromSpec: _f, ...noPrevious } = deployment();
    expect(refusal(() => checkOperable(noPrevious, 'revert'))).toBe('E_DEPLOYMENT_NO_PREVIOUS');
    expect(refusal(() => checkOperable(deployment({ status: 'paused' }), 'revert'))).toBeUndefined();
  });
});

describe('the step honours them', () => {
  // p/web/0 on the new spec, started 500 ms ago (in flight); 1 and 2 old
  const tasks = [task(0, 'new', T0 - 500), task(1, 'old'), task(2, 'old')];
  const inFlight = (over: Partial<DeploymentRecord>) => deployment({ old: 2, tasks: [{ task: 'p/web/0', state: 'pending', startedAt: new Date(T0 - 500).toISOString(), healthySince: new Date(T0 - 500).toISOString() }], ...over });

  it('paused: the task in flight finishes its health gate, no new batch starts', () => {
    const s = step({ deployment: inFlight({ status: 'paused' }), count: 3, hasHealthCheck: false, tasks, now: T0 + 600 });
    expect(s.deployment.tasks[0]!.state).toBe('healthy');
    expect(s.replace).toEqual([]);
    expect(s.deployment.status).toBe('paused');
    // the same step running replaces the next old task
    expect(step({ deployment: inFlight({}), count: 3, hasHealthCheck: false, tasks, now: T0 + 600 }).replace).toEqual(['p/web/1']);
  });

  it('paused past its progress deadline does not fail; resumed, the deadline counts from the resume', () => {
    const late = T0 + 10 * 60_000;
    const paused = inFlight({ status: 'paused', tasks: [{ task: 'p/web/0', state: 'healthy', startedAt: new Date(T0 - 500).toISOString(), healthyAt: new Date(T0).toISOString() }] });
    expect(step({ deployment: paused, count: 3, hasHealthCheck: false, tasks, now: late }).deployment.status).toBe('paused');
    const resumed = resumeRecord(paused, late);
    const s = step({ deployment: resumed, count: 3, hasHealthCheck: false, tasks, now: late + 1000 });
    expect(s.deployment.status).toBe('running');
    expect(s.replace).toEqual(['p/web/1']);
    // without the reset, the same step fails at once
    expect(step({ deployment: { ...paused, status: 'running' }, count: 3, hasHealthCheck: false, tasks, now: late + 1000 }).deployment.status).toBe('failed');
  });

  it('aborted: nothing moves, the group stays mixed', () => {
    const s = step({ deployment: abortRecord(inFlight({}), T0), count: 3, hasHealthCheck: false, tasks, now: T0 + 600 });
    expect(s).toMatchObject({ replace: [], extra: 0 });
    expect(s.deployment.status).toBe('aborted');
  });
});
