import { Text } from 'ink';
import { cell, fitColumns, type Column } from '../layout.js';
import { stateColor } from '../palette.js';

/** TableLineProps: one row's cells, the column widths, which cells take a state colour, and the row style. */
export interface TableLineProps {
  cells: string[];
  widths: number[];
  /** colored holds the indexes of cells coloured by their state word (not in the bold header). */
  colored: ReadonlySet<number>;
  inverse?: boolean;
  bold?: boolean;
}

/** TableLine lays out one row's cells; neighbouring cells of the same colour are one Text (fewer nodes per frame). */
export function TableLine({ cells, widths, colored, inverse, bold }: TableLineProps) {
  const segments: { color: string | undefined; text: string }[] = [];
  let n = 0;
  for (let i = 0; i < cells.length; i++) {
    const w = widths[i] ?? 0;
    if (w <= 0) continue;
    const c = cells[i]!;
    const color = colored.has(i) && !bold ? stateColor(c) : undefined;
    const text = (n++ > 0 ? ' ' : '') + cell(c, w);
    const last = segments[segments.length - 1];
    if (last && last.color === color) last.text += text;
    else segments.push({ color, text });
  }
  return (
    <Text wrap="truncate" inverse={inverse} bold={bold}>
      {segments.map((s, i) => (
        <Text key={i} color={s.color}>
          {s.text}
        </Text>
      ))}
    </Text>
  );
}

/**
 * columnWidths returns a function giving fitColumns(columns, width), computed once per width: a stable
 * array per width, so memoized lines are not rendered again.
 */
export function columnWidths(columns: Column[]): (width: number) => number[] {
  const byTotal = new Map<number, number[]>();
  return (width) => {
    let w = byTotal.get(width);
    if (!w) byTotal.set(width, (w = fitColumns(columns, width)));
    return w;
  };
}
