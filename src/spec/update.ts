/**
 * The `update` block: how a changed group is rolled out by a deployment (src/deploy). A group's
 * block, its plan's default and the inventory's `settings.update` are layered in that order over
 * DEFAULT_UPDATE; what no single key can check is checked on the layers a plan file holds.
 */
import type { UpdatePolicy, UpdateSettings } from './model.js';
import type { PathSeg, SpecSource } from './source.js';

/** DEFAULT_UPDATE is the update policy of a group that says nothing: one task at a time, no surge, 10 s healthy within 5 m. */
export const DEFAULT_UPDATE: UpdatePolicy = Object.freeze({
  maxParallel: 1,
  maxSurge: 0,
  minHealthyTimeMs: 10_000,
  healthyDeadlineMs: 5 * 60_000,
  progressDeadlineMs: 10 * 60_000,
  autoRevert: false,
  canary: 0,
  autoPromote: false,
});

/** RawUpdate is an `update` block as the schema outputs it (durations in ms, under their YAML names). */
export interface RawUpdate {
  maxParallel?: number;
  maxSurge?: number;
  minHealthyTime?: number;
  healthyDeadline?: number;
  progressDeadline?: number;
  autoRevert?: boolean;
  canary?: number;
  autoPromote?: boolean;
}

/** updateSettingsOf turns a validated `update` block into UpdateSettings (only the keys it has). */
export function updateSettingsOf(raw: RawUpdate): UpdateSettings {
  const out: UpdateSettings = {};
  if (raw.maxParallel !== undefined) out.maxParallel = raw.maxParallel;
  if (raw.maxSurge !== undefined) out.maxSurge = raw.maxSurge;
  if (raw.minHealthyTime !== undefined) out.minHealthyTimeMs = raw.minHealthyTime;
  if (raw.healthyDeadline !== undefined) out.healthyDeadlineMs = raw.healthyDeadline;
  if (raw.progressDeadline !== undefined) out.progressDeadlineMs = raw.progressDeadline;
  if (raw.autoRevert !== undefined) out.autoRevert = raw.autoRevert;
  if (raw.canary !== undefined) out.canary = raw.canary;
  if (raw.autoPromote !== undefined) out.autoPromote = raw.autoPromote;
  return out;
}

/** resolveUpdatePolicy layers update blocks, the first that sets a key winning (group, plan, inventory), over DEFAULT_UPDATE. */
export function resolveUpdatePolicy(...layers: (UpdateSettings | undefined)[]): UpdatePolicy {
  const out: UpdatePolicy = { ...DEFAULT_UPDATE };
  for (const layer of [...layers].reverse()) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * checkUpdateLayers reports keys of an update block that contradict each other once the layers under
 * it (a group's block over its plan's default) are merged: each issue at the key that the first layer
 * setting either of the two keys set, and only when that layer is the first (`layers[0]`): the
 * plan's own contradictions are reported once, by the check of the plan's layer alone. The
 * inventory's layer is not known while a plan loads; what it brings is clamped at run time.
 */
export function checkUpdateLayers(src: SpecSource, layers: { at: PathSeg[]; settings: UpdateSettings }[]): void {
  const merged = resolveUpdatePolicy(...layers.map((l) => l.settings));
  const first = layers[0];
  if (!first) return;
  const blame = (a: keyof UpdateSettings, b: keyof UpdateSettings): keyof UpdateSettings | undefined => {
    const layer = layers.find((l) => l.settings[a] !== undefined || l.settings[b] !== undefined);
    if (layer !== first) return undefined;
    return first.settings[a] !== undefined ? a : b;
  };
  const key = (k: keyof UpdateSettings) => YAML_KEYS[k];
  if (merged.healthyDeadlineMs <= merged.minHealthyTimeMs) {
    const k = blame('healthyDeadlineMs', 'minHealthyTimeMs');
    if (k) src.issue([...first.at, key(k)], `healthyDeadline (${ms(merged.healthyDeadlineMs)}) must be longer than minHealthyTime (${ms(merged.minHealthyTimeMs)}): no task could count healthy in time`);
  }
  if (merged.progressDeadlineMs > 0 && merged.progressDeadlineMs <= merged.healthyDeadlineMs) {
    const k = blame('progressDeadlineMs', 'healthyDeadlineMs');
    if (k) src.issue([...first.at, key(k)], `progressDeadline (${ms(merged.progressDeadlineMs)}) must be longer than healthyDeadline (${ms(merged.healthyDeadlineMs)}), or 0 for none`);
  }
  if (merged.autoPromote && merged.canary === 0) {
    const k = blame('autoPromote', 'canary');
    if (k) src.issue([...first.at, key(k)], 'autoPromote needs canary: 1 or more (there is nothing to promote)');
  }
}

const YAML_KEYS: Record<keyof UpdateSettings, string> = {
  maxParallel: 'maxParallel',
  maxSurge: 'maxSurge',
  minHealthyTimeMs: 'minHealthyTime',
  healthyDeadlineMs: 'healthyDeadline',
  progressDeadlineMs: 'progressDeadline',
  autoRevert: 'autoRevert',
  canary: 'canary',
  autoPromote: 'autoPromote',
};

function ms(v: number): string {
  return v % 60_000 === 0 && v > 0 ? `${v / 60_000}m` : v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`;
}
