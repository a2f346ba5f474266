import { Box, Text } from 'ink';
import { memo } from 'react';
import { restartText } from '../../cli/render-status.js';
import { type Column } from '../layout.js';
import { taskDetailOf, taskStateOf, type TaskRow } from '../model.js';
import { TableLine, columnWidths } from './TableLine.js';

/** TasksTableProps: the visible task rows, the selected one and the width. */
export interface TasksTableProps {
  rows: TaskRow[];
  /** selected is an index into rows, or -1. */
  selected: number;
  width: number;
  /** now is the clock for a crash-looping task's `restart N at … (in Ns)`. */
  now: number;
  empty?: string;
}

/** TASK_COLUMNS are the tasks table's columns. */
export const TASK_COLUMNS: Column[] = [
  { title: 'TASK', width: 22, min: 14, flex: true },
  { title: 'GROUP', width: 10, drop: 7 },
  { title: 'PROJECT', width: 9, drop: 8 },
  { title: 'AGENT', width: 12 },
  { title: 'DRIVER', width: 7, drop: 6 },
  // 10: `crash-loop` fits
  { title: 'STATE', width: 10 },
  { title: 'POWER', width: 8, drop: 4 },
  { title: 'HEALTH', width: 9, drop: 5 },
  { title: 'PID', width: 7, drop: 3 },
  { title: 'DETAIL', width: 10, min: 6, flex: true, drop: 2 },
];

/** COLORED: the STATE, POWER and HEALTH cells take their state's colour. */
const COLORED: ReadonlySet<number> = new Set([5, 6, 7]);

/**
 * taskCells returns a task's cells in TASK_COLUMNS order. A crash-looping task's STATE is
 * `crash-loop` and its DETAIL says when it restarts, as `factory status` prints them.
 */
export function taskCells(t: TaskRow, now: number): string[] {
  const detail = [taskDetailOf(t), restartText(t, now)].filter(Boolean).join('; ');
  return [t.task, t.group, t.project, t.agent, t.driver, taskStateOf(t), t.power ?? '-', t.health ?? '-', t.state === 'running' && t.pid !== undefined ? String(t.pid) : '-', detail];
}

/** taskWidths is fitColumns(TASK_COLUMNS, width), computed once per width (a stable array, so lines can be memoized). */
export const taskWidths = columnWidths(TASK_COLUMNS);

const HEADER = TASK_COLUMNS.map((c) => c.title);


/**
 * TaskLine is one task's line; rows are the model's cached objects, so an unchanged line is not
 * rendered again (only a crash-looping task's line takes the clock, for its countdown).
 */
const TaskLine = memo(function TaskLine({ row, widths, inverse, now }: { row: TaskRow; widths: number[]; inverse: boolean; now: number }) {
  return <TableLine cells={taskCells(row, now)} widths={widths} colored={COLORED} inverse={inverse} />;
});

/** TasksTable renders the header and only the visible task rows (the container slices them). */
export const TasksTable = memo(function TasksTable({ rows, selected, width, now, empty }: TasksTableProps) {
  const widths = taskWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No tasks.'}</Text> : rows.map((t, i) => <TaskLine key={t.task} row={t} widths={widths} inverse={i === selected} now={t.nextRestartAt ? now : 0} />)}
    </Box>
  );
});
