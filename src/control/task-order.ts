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
