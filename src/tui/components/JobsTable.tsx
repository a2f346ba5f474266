import { Box, Text } from 'ink';
import { memo } from 'react';
import { type Column } from '../layout.js';
import { slotText, type JobView } from '../jobs-model.js';
import { TableLine, columnWidths } from './TableLine.js';

/** JobsTableProps: the visible jobs, the selected one and the width. */
export interface JobsTableProps {
  rows: JobView[];
  /** selected is an index into rows, or -1. */
  selected: number;
  width: number;
  empty?: string;
}

/**
 * JOB_COLUMNS are the jobs table's columns; OK, FAIL, MISS and SKIP count slots by outcome, as `jobs
 * list` does. None is dropped: at 80 columns the id and schedule shrink and every count stays.
 */
export const JOB_COLUMNS: Column[] = [
  { title: 'JOB', width: 20, min: 12, flex: true },
  { title: 'SCHEDULE', width: 14, min: 9, flex: true },
  { title: 'NEXT', width: 20 },
  { title: 'LAST RUN', width: 9 },
  { title: 'GOING', width: 5 },
  { title: 'OK', width: 4 },
  { title: 'FAIL', width: 4 },
  { title: 'MISS', width: 4 },
  { title: 'SKIP', width: 4 },
];

/** COLORED: NEXT (`suspended`) and LAST RUN take their state's colour. */
const COLORED: ReadonlySet<number> = new Set([2, 3]);

/** scheduleText is a job's schedule with its zone when not UTC, or what it runs after. */
export function scheduleText(j: Pick<JobView, 'schedule' | 'timeZone' | 'after'>): string {
  if (!j.schedule) return `after ${j.after?.join(',') ?? '-'}`;
  return j.timeZone === 'UTC' ? j.schedule : `${j.schedule} ${j.timeZone}`;
}

/** jobCells returns a job's cells in JOB_COLUMNS order; NEXT says `suspended` for a suspended job. */
export function jobCells(j: JobView): string[] {
  const c = j.counts;
  return [j.id, scheduleText(j), j.suspended ? 'suspended' : slotText(j.next), j.lastRun?.state ?? '-', String(j.running), String(c.succeeded), String(c.failed), String(c.missed), String(c.skipped)];
}

const jobWidths = columnWidths(JOB_COLUMNS);
const HEADER = JOB_COLUMNS.map((c) => c.title);

const JobLine = memo(function JobLine({ row, widths, inverse }: { row: JobView; widths: number[]; inverse: boolean }) {
  return <TableLine cells={jobCells(row)} widths={widths} colored={COLORED} inverse={inverse} />;
});

/** JobsTable renders the header and the visible jobs (the container slices them). */
export const JobsTable = memo(function JobsTable({ rows, selected, width, empty }: JobsTableProps) {
  const widths = jobWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
      {rows.length === 0 ? <Text color="gray">{empty ?? 'No jobs (apply a plan with a jobs: section; they run on the control host).'}</Text> : rows.map((j, i) => <JobLine key={j.id} row={j} widths={widths} inverse={i === selected} />)}
    </Box>
  );
});
