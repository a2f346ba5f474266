/** compareTaskIds orders `plan/group/index` ids with numeric indices in numeric order. */
export function compareTaskIds(a: string, b: string): number {
  const ia = a.lastIndexOf('/');
  const ib = b.lastIndexOf('/');
  const pa = a.slice(0, ia);
  const pb = b.slice(0, ib);
  if (pa !== pb) return pa < pb ? -1 : 1;
  const na = Number(a.slice(ia + 1));
  const nb = Number(b.slice(ib + 1));
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * sortByTaskId returns the items in compareTaskIds order of their task ids (ties: `then`, else the
 * order given), splitting each id once rather than in every comparison: 100k placements of a plan diff
 * took ~1.7M comparisons of four slices each.
 */
export function sortByTaskId<T>(items: readonly T[], id: (item: T) => string, then?: (a: T, b: T) => number): T[] {
  const keyed = items.map((item) => {
    const t = id(item);
    const cut = t.lastIndexOf('/');
    return { item, t, prefix: t.slice(0, cut), n: Number(t.slice(cut + 1)) };
  });
  keyed.sort((a, b) => {
    if (a.prefix !== b.prefix) return a.prefix < b.prefix ? -1 : 1;
    const d = Number.isFinite(a.n) && Number.isFinite(b.n) ? a.n - b.n : a.t < b.t ? -1 : a.t > b.t ? 1 : 0;
    return d || (then ? then(a.item, b.item) : 0);
  });
  return keyed.map((k) => k.item);
}
