/**
 * Deployments in words and counts, for the CLI and the dashboard (the CLI's fast path bundles this
 * file and the dashboard's state worker loads it: nothing but types is imported).
 */
import type { UpdatePolicy } from '../spec/model.js';
import type { DeploymentRecord } from './types.js';

/** deploymentCounts are a deployment's old, new (started on its spec) and healthy (counted) tasks at its last step. */
export function deploymentCounts(d: Pick<DeploymentRecord, 'old' | 'tasks'>): { old: number; new: number; healthy: number } {
  return { old: d.old, new: d.tasks.filter((t) => t.state !== 'failed').length, healthy: d.tasks.filter((t) => t.state === 'healthy').length };
}

/** describePolicy is an update policy in a few words. */
export function describePolicy(p: UpdatePolicy): string {
  const parts = [`${p.maxParallel} at a time`, p.maxSurge ? `${p.maxSurge} extra` : 'no extra', `healthy for ${p.minHealthyTimeMs / 1000}s`];
  if (p.canary) parts.push(`${p.canary} canar${p.canary === 1 ? 'y' : 'ies'}${p.autoPromote ? ', promoted when healthy' : ''}`);
  if (p.autoRevert) parts.push('reverted if it fails');
  return parts.join(', ');
}
