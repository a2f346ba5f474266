import { Box, Text } from 'ink';
import { memo } from 'react';
import { formatBytes } from '../../cli/render.js';
import { age, cell, compactNumber, fitColumns, type Column } from '../layout.js';
import type { AgentRow } from '../model.js';
import { stateColor } from '../palette.js';

/** AgentsTableProps: the visible agent rows, the selected one, the width, and the clock for heartbeat ages. */
export interface AgentsTableProps {
  rows: AgentRow[];
  /** selected is an index into rows, or -1. */
  selected: number;
  width: number;
  now: number;
  empty?: string;
}

/** AGENT_COLUMNS are the agents table's columns: used / free per resource, live tasks, last heartbeat, attributes. */
export const AGENT_COLUMNS: Column[] = [
  { title: 'AGENT', width: 16, min: 8, flex: true },
  { title: 'IDC/CLUSTER', width: 16, drop: 6 },
  { title: 'STATE', width: 8 },
  { title: 'CPU USED/FREE', width: 13 },
  { title: 'MEM USED/FREE', width: 15 },
  { title: 'GPU', width: 5, drop: 5 },
  { title: 'TASKS', width: 5, drop: 4 },
  { title: 'SEEN', width: 5, drop: 3 },
  { title: 'ATTRIBUTES', width: 12, min: 0, flex: true, drop: 7 },
];

/** agentCells returns an agent's cells in AGENT_COLUMNS order. */
export function agentCells(a: AgentRow, now: number): string[] {
  const free = (total: number, used: number) => Math.max(0, total - used);
  return [
    a.name,
    `${a.idc}/${a.cluster}`,
    a.state,
    `${compactNumber(a.used.cpus)}/${compactNumber(free(a.capacity.cpus, a.used.cpus))}`,
    `${formatBytes(a.used.mem)}/${formatBytes(free(a.capacity.mem, a.used.mem))}`,
    a.capacity.gpus ? `${a.used.gpus}/${free(a.capacity.gpus, a.used.gpus)}` : '-',
    String(a.tasks),
    a.state === 'lost' || a.state === 'down' ? (a.lastSeen ? age(a.lastSeen, now) : '-') : age(a.lastSeen, now),
    a.error ? `! ${a.error}` : a.attributes,
  ];
}

const widthsByTotal = new Map<number, number[]>();

/** agentWidths is fitColumns(AGENT_COLUMNS, width), computed once per width (a stable array, so lines can be memoized). */
export function agentWidths(width: number): number[] {
  let w = widthsByTotal.get(width);
  if (!w) widthsByTotal.set(width, (w = fitColumns(AGENT_COLUMNS, width)));
  return w;
}

const HEADER = AGENT_COLUMNS.map((c) => c.title);

/** Line lays out one row's cells; neighbouring cells of the same colour are one Text (fewer nodes to lay out per frame). */
function Line({ cells, widths, inverse, bold }: { cells: string[]; widths: number[]; inverse?: boolean; bold?: boolean }) {
  const segments: { color: string | undefined; text: string }[] = [];
  let n = 0;
  for (let i = 0; i < cells.length; i++) {
    const w = widths[i] ?? 0;
    if (w <= 0) continue;
    const c = cells[i]!;
    const color = i === 2 && !bold ? stateColor(c) : undefined;
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

/** AgentLine is one agent's line; rows are the model's cached objects, so an unchanged line is not rendered again. */
const AgentLine = memo(function AgentLine({ row, widths, inverse, now }: { row: AgentRow; widths: number[]; inverse: boolean; now: number }) {
  return <Line cells={agentCells(row, now)} widths={widths} inverse={inverse} />;
});

/** AgentsTable renders the header and only the visible agent rows (the container slices them). */
export const AgentsTable = memo(function AgentsTable({ rows, selected, width, now, empty }: AgentsTableProps) {
  const widths = agentWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <Line cells={HEADER} widths={widths} bold />
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No agents.'}</Text> : rows.map((a, i) => <AgentLine key={a.name} row={a} widths={widths} inverse={i === selected} now={now} />)}
    </Box>
  );
});
