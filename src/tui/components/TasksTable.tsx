import { Box, Text } from 'ink';
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

/** TasksTable renders the header and only the visible task rows (the container slices them). */
export function TasksTable({ rows, selected, width, empty }: TasksTableProps) {
  const widths = fitColumns(TASK_COLUMNS, width);
  const line = (cells: string[], key: string, opts: { inverse?: boolean; bold?: boolean } = {}) => (
    <Text key={key} wrap="truncate" inverse={opts.inverse} bold={opts.bold}>
      {cells
        .map((c, i) => ({ c, i, w: widths[i] ?? 0 }))
        .filter((x) => x.w > 0)
        .map((x, n) => (
          <Text key={x.i} color={COLORED.has(x.i) && !opts.bold ? stateColor(x.c) : undefined}>
            {(n > 0 ? ' ' : '') + cell(x.c, x.w)}
          </Text>
        ))}
    </Text>
  );
  return (
    <Box flexDirection="column" width={width}>
      {line(
        TASK_COLUMNS.map((c) => c.title),
        'header',
        { bold: true },
      )}
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No tasks.'}</Text> : rows.map((t, i) => line(taskCells(t), t.task, { inverse: i === selected }))}
    </Box>
  );
}
