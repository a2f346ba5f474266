import { Box, Text } from 'ink';
import { memo } from 'react';
import { cell, fitColumns, type Column } from '../layout.js';
import { taskDetailOf, type TaskRow } from '../model.js';
import { stateColor } from '../palette.js';

/** TasksTableProps: the visible task rows, the selected one and the width. */
export interface TasksTableProps {
  rows: TaskRow[];
  /** selected is an index into rows, or -1. */
  selected: number;
  width: number;
  empty?: string;
}

/** TASK_COLUMNS are the tasks table's columns. */
export const TASK_COLUMNS: Column[] = [
  { title: 'TASK', width: 22, min: 14, flex: true },
  { title: 'GROUP', width: 10, drop: 7 },
  { title: 'PROJECT', width: 9, drop: 8 },
  { title: 'AGENT', width: 12 },
  { title: 'DRIVER', width: 7, drop: 6 },
  { title: 'STATE', width: 8 },
  { title: 'POWER', width: 8, drop: 4 },
  { title: 'HEALTH', width: 9, drop: 5 },
  { title: 'PID', width: 7, drop: 3 },
  { title: 'DETAIL', width: 10, min: 6, flex: true, drop: 2 },
];

const COLORED = new Set([5, 6, 7]);

/** taskCells returns a task's cells in TASK_COLUMNS order. */
export function taskCells(t: TaskRow): string[] {
  return [t.task, t.group, t.project, t.agent, t.driver, t.state, t.power ?? '-', t.health ?? '-', t.state === 'running' && t.pid !== undefined ? String(t.pid) : '-', taskDetailOf(t)];
}

const widthsByTotal = new Map<number, number[]>();

/** taskWidths is fitColumns(TASK_COLUMNS, width), computed once per width (a stable array, so lines can be memoized). */
export function taskWidths(width: number): number[] {
  let w = widthsByTotal.get(width);
  if (!w) widthsByTotal.set(width, (w = fitColumns(TASK_COLUMNS, width)));
  return w;
}

const HEADER = TASK_COLUMNS.map((c) => c.title);

/** Line lays out one row's cells; neighbouring cells of the same colour are one Text (fewer nodes to lay out per frame). */
function Line({ cells, widths, inverse, bold }: { cells: string[]; widths: number[]; inverse?: boolean; bold?: boolean }) {
  const segments: { color: string | undefined; text: string }[] = [];
  let n = 0;
  for (let i = 0; i < cells.length; i++) {
    const w = widths[i] ?? 0;
    if (w <= 0) continue;
    const c = cells[i]!;
    const color = COLORED.has(i) && !bold ? stateColor(c) : undefined;
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

/** TaskLine is one task's line; rows are the model's cached objects, so an unchanged line is not rendered again. */
const TaskLine = memo(function TaskLine({ row, widths, inverse }: { row: TaskRow; widths: number[]; inverse: boolean }) {
  return <Line cells={taskCells(row)} widths={widths} inverse={inverse} />;
});

/** TasksTable renders the header and only the visible task rows (the container slices them). */
export const TasksTable = memo(function TasksTable({ rows, selected, width, empty }: TasksTableProps) {
  const widths = taskWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <Line cells={HEADER} widths={widths} bold />
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No tasks.'}</Text> : rows.map((t, i) => <TaskLine key={t.task} row={t} widths={widths} inverse={i === selected} />)}
    </Box>
  );
});
