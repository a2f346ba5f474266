/**
 * Deployments in words, for the CLI (its fast path bundles this file: nothing but types is imported).
 */
import type { UpdatePolicy } from '../spec/model.js';

/** describePolicy is an update policy in a few words. */
export function describePolicy(p: UpdatePolicy): string {
  const parts = [`${p.maxParallel} at a time`, p.maxSurge ? `${p.maxSurge} extra` : 'no extra', `healthy for ${p.minHealthyTimeMs / 1000}s`];
  if (p.canary) parts.push(`${p.canary} canar${p.canary === 1 ? 'y' : 'ies'}${p.autoPromote ? ', promoted when healthy' : ''}`);
  if (p.autoRevert) parts.push('reverted if it fails');
  return parts.join(', ');
}
