/**
 * Level 1 of the two-level placement: which idc and cluster a counted group goes to, decided once per
 * group from its static candidates (one evaluation per equivalence class, candidates.ts) and the free
 * capacity per cluster. Choose: the cluster where the group already runs; else the one with most free
 * capacity in the group's dominant resource among those that hold all its tasks; else the one that
 * holds most (the rest are unplaced, and the reason says so).
 */
import type { StaticClasses } from './candidates.js';
import type { ClusterLedger, GroupDemand } from './ledger.js';
import { compareKeys } from './ledger.js';
import type { DesiredGroup, GroupDecision } from './types.js';

/** ClusterChoice is level 1's decision for a group and the candidate slots of the chosen cluster. */
export interface ClusterChoice {
  decision: GroupDecision;
  /** cluster is the cluster the group is confined to ('' when no agent passes its static checks). */
  cluster: string;
  /** candidates are the slots of that cluster passing the group's static checks, in slot order. */
  candidates: readonly number[];
}

/** Level1Inputs is what level 1 reads from the pass. */
export interface Level1Inputs {
  ledger: ClusterLedger;
  classes: StaticClasses;
  /** totalVector is the allocatable total of the ready agents over the ledger's dims. */
  totalVector: Float64Array;
  /** running counts the group's live tasks per cluster (sticky level 1), if any. */
  running: ReadonlyMap<string, number> | undefined;
  /** room is how many more of the group's tasks fit on a slot now, at most `cap` (the dynamic checkers' packed forms). */
  room: (i: number, cap: number) => number;
  /** roomKey names what `room` reads from the group (feasibility.ts `packKey`); undefined: its counts are not reused. */
  roomKey?: string | undefined;
  /** counts reuses per-cluster counts across the groups of a pass. */
  counts?: ClusterCounts;
}

/**
 * ClusterCounts remembers, per candidate list (a cluster's slots passing a signature's static checks),
 * the free capacity summed in a dim and how many tasks fit for a `roomKey`, with the cluster's ledger
 * version: a count is reused only while nothing was reserved or released in that cluster, so it is the
 * number the same loop would compute again. Most groups change one cluster of many.
 */
export class ClusterCounts {
  private readonly lists = new WeakMap<readonly number[], Map<string, { version: number; value: number }>>();

  /** get returns the remembered value of `key` on `list`, computing it when the cluster changed since. */
  get(list: readonly number[], key: string, version: number, compute: () => number): number {
    let m = this.lists.get(list);
    if (!m) this.lists.set(list, (m = new Map()));
    const hit = m.get(key);
    if (hit && hit.version === version) return hit.value;
    const value = compute();
    m.set(key, { version, value });
    return value;
  }
}

/** chooseCluster decides the cluster of a group that has `need` tasks to place. */
export function chooseCluster(inputs: Level1Inputs, g: DesiredGroup, demand: GroupDemand, need: number): ClusterChoice {
  const { ledger, classes, room } = inputs;
  const byCluster = classes.candidatesByCluster(g);
  const decision: GroupDecision = { plan: g.plan, group: g.group, project: g.project, idc: '', cluster: '' };
  const clusters = [...byCluster.keys()].sort();
  if (clusters.length === 0) return { decision, cluster: '', candidates: [] };
  let chosen = clusters[0] ?? '';
  if (clusters.length > 1) {
    const dom = dominantDim(ledger, demand, inputs.totalVector);
    const D = ledger.dims.length;
    const fitOf = (list: readonly number[]) => {
      let fit = 0;
      for (let j = 0; j < list.length && fit < need; j++) fit += room(list[j] ?? 0, need - fit);
      return fit;
    };
    const freeOf = (list: readonly number[]) => {
      let free = 0;
      for (let j = 0; j < list.length; j++) free += ledger.free[(list[j] ?? 0) * D + dom] ?? 0;
      return free;
    };
    const { counts, roomKey } = inputs;
    const stats = clusters.map((c) => {
      const list = byCluster.get(c) ?? [];
      if (!counts) return { c, fit: fitOf(list), free: freeOf(list) };
      const version = ledger.clusterVersion(c);
      const fit = roomKey === undefined ? fitOf(list) : counts.get(list, `fit ${need} ${roomKey}`, version, () => fitOf(list));
      const free = counts.get(list, `free ${dom}`, version, () => freeOf(list));
      return { c, fit, free };
    });
    const running = inputs.running;
    const sticky = running ? [...running.entries()].filter(([c]) => byCluster.has(c)).sort((a, b) => b[1] - a[1] || compareKeys(a[0], b[0]))[0]?.[0] : undefined;
    const holders = stats.filter((s) => s.fit >= need).sort((a, b) => b.free - a.free || compareKeys(a.c, b.c));
    if (sticky !== undefined) {
      chosen = sticky;
      decision.note = `kept in ${sticky}, where the group runs`;
    } else if (holders[0]) {
      chosen = holders[0].c;
      decision.note = `${holders.length} of ${clusters.length} clusters hold all ${need} tasks; most free ${ledger.dims[dom]}`;
    } else {
      const best = [...stats].sort((a, b) => b.fit - a.fit || b.free - a.free || compareKeys(a.c, b.c))[0];
      chosen = best?.c ?? chosen;
      decision.note = `no cluster holds all ${need} tasks (${[...stats].sort((a, b) => b.fit - a.fit || compareKeys(a.c, b.c)).slice(0, 4).map((s) => `${s.c} fits ${s.fit}`).join(', ')}${stats.length > 4 ? ', …' : ''})`;
    }
  }
  const list = byCluster.get(chosen) ?? [];
  decision.cluster = chosen;
  decision.idc = ledger.slots[list[0] ?? 0]?.agent.idc ?? '';
  return { decision, cluster: chosen, candidates: list };
}

/** dominantDim is the dim in which one task of the group takes the largest share of the ready total (cpus when it asks for nothing). */
function dominantDim(ledger: ClusterLedger, demand: GroupDemand, total: Float64Array): number {
  let best = ledger.dimOf('cpus');
  let share = -1;
  for (const k of demand.asked) {
    const t = total[k] ?? 0;
    const s = t > 0 ? (demand.amount[k] ?? 0) / t : 0;
    if (s > share) {
      share = s;
      best = k;
    }
  }
  return best;
}
