/**
 * Stranded capacity: per dimension, the free capacity of ready agents on which no task shape of the
 * pass fits any more (every counted group's resources, every resource-plan shape) — capacity this batch
 * cannot use.
 */
import type { ClusterLedger } from './ledger.js';
import { RESOURCE_EPSILON } from './resources.js';
import { isResourcePlan } from './resource-plans.js';
import type { DesiredGroup, TaskResources } from './types.js';

/** demandsOfPass packs the task shapes of the pass: each counted group's resources and each resource-plan shape. */
export function demandsOfPass(ledger: ClusterLedger, groups: readonly DesiredGroup[], vec: (r: TaskResources) => Float64Array): Float64Array[] {
  const demands: Float64Array[] = [];
  for (const g of groups) {
    if (isResourcePlan(g)) for (const sh of g.shapes ?? []) demands.push(ledger.vectorOf({ ...sh, scalars: {} }));
    else demands.push(vec(g.resources));
  }
  return demands;
}

/** strandedCapacity sums, per dim, the free capacity of ready agents on which no demand of the pass fits. */
export function strandedCapacity(ledger: ClusterLedger, demands: Float64Array[]): Record<string, number> {
  const D = ledger.dims.length;
  const out = new Float64Array(D);
  // one per group: 1,000 groups have a handful of shapes, and a full agent tries every one of them
  const unique = new Map<string, Float64Array>();
  for (const d of demands) unique.set(d.join(','), d);
  const sorted = [...unique.values()].sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
  if (sorted.length > 0) {
    ledger.slots.forEach((s, i) => {
      if (s.agent.state !== 'ready') return;
      const row = i * D;
      const fits = sorted.some((d) => {
        for (let k = 0; k < D; k++) if ((d[k] ?? 0) > 0 && (d[k] ?? 0) > (ledger.free[row + k] ?? 0) + RESOURCE_EPSILON) return false;
        return true;
      });
      if (fits) return;
      for (let k = 0; k < D; k++) out[k] = (out[k] ?? 0) + Math.max(0, ledger.free[row + k] ?? 0);
    });
  }
  const result: Record<string, number> = {};
  ledger.dims.forEach((d, k) => (result[d] = Number((out[k] ?? 0).toFixed(6))));
  return result;
}
