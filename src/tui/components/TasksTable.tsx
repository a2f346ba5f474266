import { Box, Text } from 'ink';
import { memo } from 'react';
import { type Column } from '../layout.js';
import { taskDetailOf, type TaskRow } from '../model.js';
import { TableLine, columnWidths } from './TableLine.js';

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

/** COLORED: the STATE, POWER and HEALTH cells take their state's colour. */
const COLORED: ReadonlySet<number> = new Set([5, 6, 7]);

/** taskCells returns a task's cells in TASK_COLUMNS order. */
export function taskCells(t: TaskRow): string[] {
  return [t.task, t.group, t.project, t.agent, t.driver, t.state, t.power ?? '-', t.health ?? '-', t.state === 'running' && t.pid !== undefined ? String(t.pid) : '-', taskDetailOf(t)];
}

/** taskWidths is fitColumns(TASK_COLUMNS, width), computed once per width (a stable array, so lines can be memoized). */
export const taskWidths = columnWidths(TASK_COLUMNS);

const HEADER = TASK_COLUMNS.map((c) => c.title);


/** TaskLine is one task's line; rows are the model's cached objects, so an unchanged line is not rendered again. */
const TaskLine = memo(function TaskLine({ row, widths, inverse }: { row: TaskRow; widths: number[]; inverse: boolean }) {
  return <TableLine cells={taskCells(row)} widths={widths} colored={COLORED} inverse={inverse} />;
});

/** TasksTable renders the header and only the visible task rows (the container slices them). */
export const TasksTable = memo(function TasksTable({ rows, selected, width, empty }: TasksTableProps) {
  const widths = taskWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No tasks.'}</Text> : rows.map((t, i) => <TaskLine key={t.task} row={t} widths={widths} inverse={i === selected} />)}
    </Box>
  );
});
