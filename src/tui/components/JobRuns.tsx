import { Box, Text } from 'ink';
import { memo } from 'react';
import type { RunRecord } from '../../jobs/types.js';
import { type Column } from '../layout.js';
import { slotText, type JobView } from '../jobs-model.js';
import { TableLine, columnWidths } from './TableLine.js';

/** JobRunsProps: the selected job, its runs (newest first), the width and the lines the pane may take. */
export interface JobRunsProps {
  job?: JobView;
  runs: RunRecord[];
  width: number;
  height: number;
}

/** RUN_COLUMNS are the runs pane's columns. */
export const RUN_COLUMNS: Column[] = [
  { title: 'SLOT', width: 20 },
  { title: 'TRIGGER', width: 8, drop: 2 },
  { title: 'STATE', width: 9 },
  { title: 'ATTEMPT', width: 7, drop: 1 },
  { title: 'AGENT', width: 12 },
  { title: 'EXIT', width: 6 },
  { title: 'REASON', width: 12, min: 6, flex: true, drop: 3 },
];

/** COLORED: STATE takes its state's colour. */
const COLORED: ReadonlySet<number> = new Set([2]);

/** runCells returns a run's cells in RUN_COLUMNS order (EXIT: the exit code, else the signal). */
export function runCells(r: RunRecord): string[] {
  return [slotText(r.slot), r.trigger, r.state, String(r.attempt), r.agent ?? '-', r.exitCode !== undefined ? String(r.exitCode) : (r.signal ?? '-'), r.reason ?? ''];
}

const runWidths = columnWidths(RUN_COLUMNS);
const HEADER = RUN_COLUMNS.map((c) => c.title);

/** jobRunsHeight is how many lines the runs pane takes under the jobs table: its title, header and up to 6 runs. */
export function jobRunsHeight(bodyHeight: number): number {
  return Math.min(8, Math.max(3, Math.floor(bodyHeight * 0.4)));
}

/** JobRuns is the pane under the jobs table: the selected job's kept runs and those going, newest first. */
export const JobRuns = memo(function JobRuns({ job, runs, width, height }: JobRunsProps) {
  const widths = runWidths(width);
  if (!job) return <Box height={height} />;
  const shown = runs.slice(0, Math.max(0, height - 2));
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text wrap="truncate" bold>
        {`Runs of ${job.id}`}
        <Text color="gray">{runs.length ? ` · newest first${runs.length > shown.length ? ` · ${shown.length} of ${runs.length}` : ''}` : ''} · r run now · s {job.suspended ? 'resume' : 'suspend'}</Text>
      </Text>
      {runs.length === 0 ? (
        <Text color="gray">No runs kept.</Text>
      ) : (
        <>
          <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
          {shown.map((r) => (
            <TableLine key={r.id} cells={runCells(r)} widths={widths} colored={COLORED} />
          ))}
        </>
      )}
    </Box>
  );
});
