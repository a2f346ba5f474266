import { describe, expect, it } from 'vitest';
import { appliedSummary, renderApply } from '../../src/cli/render.js';
import type { ApplyResult, PlacementView } from '../../src/control/plan.js';

const res = { cpus: 0.1, mem: 1, disk: 0, gpus: 0, ports: [] };
const place = (task: string, action: PlacementView['action']): PlacementView => ({ task, group: 'g', plan: 'p', project: 'x', idc: 'i', cluster: 'c', agent: 'a', driver: 'process', resources: res, action });

function result(over: Partial<ApplyResult>): ApplyResult {
  return {
    changes: { create: 0, destroy: 0, update: 0 }, placements: [], unplaced: [], stops: [], plans: [{ name: 'p', project: 'x', file: 'p.yaml' }],
    inventory: 'embedded', offline: false, agents: [], warnings: [], stranded: {}, groups: [], results: [], ok: true, ...over,
  };
}

describe('the summary of an apply counts what was done', () => {
  it('a restart is not a create, a failed start is not created, a moved task is not destroyed', () => {
    const r = result({
      changes: { create: 3, destroy: 0, update: 0 },
      placements: [place('p/g/0', 'create'), place('p/g/1', 'restart'), place('p/g/2', 'create'), place('p/g/3', 'reschedule')],
      stops: [{ task: 'p/g/3', group: 'g', plan: 'p', agent: 'old', reason: 'reschedule' }],
      results: [
        { task: 'p/g/3', agent: 'old', action: 'stop', ok: true, state: 'stopped' },
        { task: 'p/g/0', agent: 'a', action: 'start', ok: true, state: 'running' },
        { task: 'p/g/1', agent: 'a', action: 'start', ok: true, state: 'running' },
        { task: 'p/g/2', agent: 'a', action: 'start', ok: false, error: 'exec failed' },
        { task: 'p/g/3', agent: 'a', action: 'start', ok: true, state: 'running' },
      ],
      ok: false,
    });
    expect(appliedSummary(r, 'apply')).toBe('Applied: 1 created, 0 updated, 0 destroyed, 1 restarted, 1 moved. 1 operation failed.');
  });

  it('destroy says Destroyed once, not an Applied line as well', () => {
    const r = result({
      changes: { create: 0, destroy: 2, update: 0 },
      stops: [0, 1].map((i) => ({ task: `p/g/${i}`, group: 'g', plan: 'p', agent: 'a', reason: 'destroy' })),
      results: [0, 1].map((i) => ({ task: `p/g/${i}`, agent: 'a', action: 'stop' as const, ok: true, state: 'stopped' })),
    });
    const text = renderApply(r, 'destroy');
    expect(text).toMatch(/\nDestroyed 2 tasks\.$/);
    expect(text).not.toMatch(/Applied:/);
  });
});
