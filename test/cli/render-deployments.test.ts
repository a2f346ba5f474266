/** How deploy list and deploy status print: the counts, the age, a failed task's reason, the events with who caused them. */
import { expect, it } from 'vitest';
import { ageOf, renderDeployment, renderDeployments } from '../../src/cli/render-deployments.js';
import type { DeploymentRecord } from '../../src/deploy/types.js';
import type { GroupSpec } from '../../src/spec/model.js';
import { DEFAULT_UPDATE } from '../../src/spec/update.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const spec: GroupSpec = { name: 'web', kind: 'process', driver: 'process', count: 3, everyAgent: false, resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], strategy: 'binpack', command: ['v2'], env: {}, stopGraceMs: 0, restart: 'always', line: 1, col: 1 };
const failed: DeploymentRecord = {
  id: 'dep-00000000a1', plan: 'p', group: 'web', project: 'alpha', fromHash: 'aaa', toHash: 'bbb', toSpec: { ...spec, command: ['v2'] }, policy: { ...DEFAULT_UPDATE },
  status: 'failed', message: 'p/web/1 unhealthy: 3 failed checks', promoted: true, old: 1, createdAt: at(0), updatedAt: at(9000), progressAt: at(5000), finishedAt: at(9000), by: 'local:me',
  tasks: [
    { task: 'p/web/0', state: 'healthy', startedAt: at(1000), healthyAt: at(5000) },
    { task: 'p/web/1', state: 'failed', startedAt: at(6000), error: 'unhealthy: 3 failed checks' },
  ],
};

it('ageOf picks the largest whole unit', () => {
  expect([ageOf(at(0), T0 + 45_000), ageOf(at(0), T0 + 12 * 60_000), ageOf(at(0), T0 + 3 * 3_600_000), ageOf(at(0), T0 + 50 * 3_600_000)]).toEqual(['45s', '12m', '3h', '2d']);
});

it('deploy list: id, group, status, old/new/healthy, age; a revert names what it reverts', () => {
  const out = renderDeployments([{ ...failed, id: 'dep-00000000b2', status: 'running', revertOf: failed.id, createdAt: at(9000), tasks: [], old: 2 }, { ...failed, status: 'reverted', revertedBy: 'dep-00000000b2' }], T0 + 70_000);
  const lines = out.split('\n');
  expect(lines[0]).toMatch(/^ID\s+GROUP\s+STATUS\s+OLD\s+NEW\s+HEALTHY\s+AGE\s+NOTE/);
  expect(lines[1]).toMatch(/^dep-00000000b2\s+p\/web\s+running\s+2\s+0\s+0\s+61s\s+revert of dep-00000000a1/);
  expect(lines[2]).toMatch(/^dep-00000000a1\s+p\/web\s+reverted\s+1\s+1\s+1\s+70s\s+reverted by dep-00000000b2/);
  expect(renderDeployments([], T0)).toMatch(/^No deployments/);
});

it('deploy status: why it failed, each new task, the events with who caused them', () => {
  const out = renderDeployment(failed, [{ rev: 7, at: at(9000), topic: 'deployment', kind: 'deployment-failed', message: 'p/web failed: p/web/1 unhealthy', deployment: failed.id }, { rev: 8, at: at(9500), topic: 'deployment', kind: 'deployment-aborted', message: 'aborted', by: 'fct_abc', deployment: failed.id }], T0 + 60_000);
  expect(out).toContain('status:   failed — p/web/1 unhealthy: 3 failed checks');
  expect(out).toContain('tasks:    1 old, 1 new, 1 healthy');
  expect(out).toMatch(/p\/web\/1\s+failed\s+\S+\s+-\s+unhealthy: 3 failed checks/);
  expect(out).toContain('deployment-aborted (fct_abc): aborted');
  expect(out).toContain('by local:me');
});
