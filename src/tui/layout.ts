/**
 * Text layout for the dashboard's fixed-width terminal rows: column widths that fit the terminal,
 * cells padded or cut to their width, capacity bars and short ages. Plain functions.
 */

/** Column is one table column: a title, a preferred width, how narrow it may get, and how soon it is dropped. */
export interface Column {
  title: string;
  width: number;
  /** min is the narrowest a flexible column gets before columns are dropped instead (default width). */
  min?: number;
  /** flex columns share the width left over. */
  flex?: boolean;
  /** drop orders which columns disappear first on a narrow terminal (highest first); absent: never dropped. */
  drop?: number;
}

/**
 * fitColumns returns each column's width for a terminal `total` columns wide (one space between
 * columns). On a narrow terminal, droppable columns go first (highest `drop` first), then flexible
 * ones shrink to their minimum, then the rightmost are cut; on a wide one, flexible columns share
 * the rest. A dropped column has width 0.
 */
export function fitColumns(columns: Column[], total: number): number[] {
  const widths = columns.map((c) => c.width);
  const used = () => widths.reduce((s, w) => s + (w > 0 ? w + 1 : 0), 0) - 1;
  const droppable = columns
    .map((c, i) => ({ i, drop: c.drop }))
    .filter((x): x is { i: number; drop: number } => x.drop !== undefined)
    .sort((a, b) => b.drop - a.drop || b.i - a.i);
  for (const d of droppable) {
    if (used() <= total) break;
    widths[d.i] = 0;
  }
  for (let i = columns.length - 1; i >= 0 && used() > total; i--) {
    if (!columns[i]!.flex || widths[i] === 0) continue;
    widths[i] = Math.max(columns[i]!.min ?? 0, widths[i]! - (used() - total));
  }
  for (let i = columns.length - 1; i >= 0 && used() > total; i--) {
    if (widths[i] === 0) continue;
    const cut = used() - total;
    widths[i] = widths[i]! > cut ? widths[i]! - cut : 0;
  }
  const flex = columns.map((c, i) => (c.flex && widths[i]! > 0 ? i : -1)).filter((i) => i >= 0);
  const left = total - used();
  if (left > 0 && flex.length) {
    const each = Math.floor(left / flex.length);
    flex.forEach((i, n) => (widths[i] = widths[i]! + each + (n === 0 ? left - each * flex.length : 0)));
  }
  return widths;
}

/** cell pads or cuts text to exactly width characters (a cut ends with `…`). */
export function cell(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  if (text.length > width) return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
  return align === 'right' ? text.padStart(width) : text.padEnd(width);
}

/** joinCells lays cells out in their widths, one space apart, skipping hidden (width 0) columns. */
export function joinCells(cells: string[], widths: number[], right: ReadonlySet<number> = new Set()): string {
  const out: string[] = [];
  cells.forEach((c, i) => {
    const w = widths[i] ?? 0;
    if (w > 0) out.push(cell(c, w, right.has(i) ? 'right' : 'left'));
  });
  return out.join(' ');
}

/** bar draws a fraction (0..1, clamped) as a width-wide bar of full and light blocks, or `#`/`.` with ascii. */
export function bar(fraction: number, width: number, ascii = false): string {
  if (width <= 0) return '';
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return (ascii ? '#' : '█').repeat(full) + (ascii ? '.' : '░').repeat(width - full);
}

/** percent prints used/total as a whole percentage (`-` when total is 0). */
export function percent(used: number, total: number): string {
  if (!total) return '-';
  return `${Math.round((used / total) * 100)}%`;
}

/** age prints how long ago an ISO time was, briefly: `4s`, `12m`, `3h`, `2d`; `-` when unknown. */
export function age(iso: string | undefined, now: number): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** compactNumber prints a number of cpus or gpus briefly: 0.5, 12, 1.2k. */
export function compactNumber(n: number): string {
  if (Math.abs(n) >= 10_000) return `${(n / 1000).toFixed(0)}k`;
  if (Math.abs(n) >= 1000) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(n < 10 ? 2 : 1).replace(/0+$/, '').replace(/\.$/, '');
}
