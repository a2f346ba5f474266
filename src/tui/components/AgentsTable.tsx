import { Box, Text } from 'ink';
import { memo } from 'react';
import { formatBytes } from '../../cli/render.js';
import { age, compactNumber, type Column } from '../layout.js';
import type { AgentRow } from '../model.js';
import { TableLine, columnWidths } from './TableLine.js';

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

/** agentWidths is fitColumns(AGENT_COLUMNS, width), computed once per width (a stable array, so lines can be memoized). */
export const agentWidths = columnWidths(AGENT_COLUMNS);

const HEADER = AGENT_COLUMNS.map((c) => c.title);

/** COLORED: the STATE cell takes its state's colour. */
const COLORED: ReadonlySet<number> = new Set([2]);

/** AgentLine is one agent's line; rows are the model's cached objects, so an unchanged line is not rendered again. */
const AgentLine = memo(function AgentLine({ row, widths, inverse, now }: { row: AgentRow; widths: number[]; inverse: boolean; now: number }) {
  return <TableLine cells={agentCells(row, now)} widths={widths} colored={COLORED} inverse={inverse} />;
});

/** AgentsTable renders the header and only the visible agent rows (the container slices them). */
export const AgentsTable = memo(function AgentsTable({ rows, selected, width, now, empty }: AgentsTableProps) {
  const widths = agentWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No agents.'}</Text> : rows.map((a, i) => <AgentLine key={a.name} row={a} widths={widths} inverse={i === selected} now={now} />)}
    </Box>
  );
});
