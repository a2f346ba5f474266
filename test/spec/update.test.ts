/**
 * The `update` block: a group's own keys over its plan's default over the inventory's
 * `settings.update` over DEFAULT_UPDATE; durations in ms; an inventory's contradiction at its key.
 */
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { loadInventoryText, loadPlanText } from '../../src/spec/index.js';
import { DEFAULT_UPDATE, resolveUpdatePolicy } from '../../src/spec/update.js';

const inventory = (settings: string) => `settings: ${settings}
idcs: [{name: dc, clusters: [{name: c, agents: [{name: a, local: true}]}]}]
`;

describe('update blocks', () => {
  it('a group says its own keys, the plan the rest; durations are ms', () => {
    const plan = loadPlanText(
      `name: p
update: {maxParallel: 3, minHealthyTime: 500ms, autoRevert: true}
processes:
  - name: a
    command: [sleep, "60"]
    update: {maxParallel: 2, maxSurge: 1, healthyDeadline: 1m, canary: 1, autoPromote: true, progressDeadline: 0}
  - name: b
    command: [sleep, "60"]
`,
      'p.yaml',
    );
    expect(plan.update).toEqual({ maxParallel: 3, minHealthyTimeMs: 500, autoRevert: true });
    const [a, b] = plan.groups;
    expect(a!.update).toEqual({ maxParallel: 2, maxSurge: 1, healthyDeadlineMs: 60_000, canary: 1, autoPromote: true, progressDeadlineMs: 0 });
    expect(b!.update).toBeUndefined();
    expect(resolveUpdatePolicy(a!.update, plan.update)).toEqual({
      maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 500, healthyDeadlineMs: 60_000, progressDeadlineMs: 0, autoRevert: true, canary: 1, autoPromote: true,
    });
    expect(resolveUpdatePolicy(b!.update, plan.update)).toEqual({ ...DEFAULT_UPDATE, maxParallel: 3, minHealthyTimeMs: 500, autoRevert: true });
  });

  it('the inventory’s settings.update is under the plan’s', () => {
    const inv = loadInventoryText(inventory('{update: {maxSurge: 2, minHealthyTime: 2s, maxParallel: 4}}'), 'inv.yaml');
    expect(inv.settings?.update).toEqual({ maxSurge: 2, minHealthyTimeMs: 2000, maxParallel: 4 });
    expect(resolveUpdatePolicy({ maxParallel: 1 }, { minHealthyTimeMs: 0 }, inv.settings?.update)).toEqual({ ...DEFAULT_UPDATE, maxParallel: 1, minHealthyTimeMs: 0, maxSurge: 2 });
    expect(resolveUpdatePolicy()).toEqual(DEFAULT_UPDATE);
  });

  it('an inventory’s contradictory update block is reported at its key', () => {
    let err: unknown;
    try {
      loadInventoryText(inventory('{update: {healthyDeadline: 5s}}'), 'inv.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toBe('inv.yaml:1:38: settings.update.healthyDeadline: healthyDeadline (5s) must be longer than minHealthyTime (10s): no task could count healthy in time');
  });
});
