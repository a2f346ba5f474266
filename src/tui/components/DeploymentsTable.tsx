import { Box, Text } from 'ink';
import { memo } from 'react';
import { age, type Column } from '../layout.js';
import { noteOf, type DeploymentView } from '../deployments-model.js';
import { TableLine, columnWidths } from './TableLine.js';

/** DeploymentsTableProps: the visible deployments, the selected one, the width and the clock (ages). */
export interface DeploymentsTableProps {
  rows: readonly DeploymentView[];
  /** selected is an index into rows, or -1. */
  selected: number;
  width: number;
  now: number;
  empty?: string;
}

/**
 * DEPLOYMENT_COLUMNS are the deployments table's columns, `factory deploy list`'s: OLD, NEW and
 * HEALTHY are its counts (deploymentCounts). None of the counts is dropped: at 80 columns AGE goes;
 * the note takes what a wider terminal leaves.
 */
export const DEPLOYMENT_COLUMNS: Column[] = [
  { title: 'DEPLOYMENT', width: 14 },
  { title: 'GROUP', width: 16 },
  { title: 'STATUS', width: 17 },
  { title: 'OLD', width: 4 },
  { title: 'NEW', width: 4 },
  { title: 'HEALTHY', width: 7 },
  { title: 'AGE', width: 4, drop: 2 },
  { title: 'NOTE', width: 12, min: 6, flex: true, drop: 1 },
];

/** COLORED: STATUS takes its state's colour. */
const COLORED: ReadonlySet<number> = new Set([2]);

/** deploymentCells returns a deployment's cells in DEPLOYMENT_COLUMNS order (the counts as `deploy list` prints them). */
export function deploymentCells(d: DeploymentView, now: number): string[] {
  return [d.id, `${d.plan}/${d.group}`, d.status, String(d.old), String(d.new), String(d.healthy), age(d.createdAt, now), noteOf(d)];
}

const deploymentWidths = columnWidths(DEPLOYMENT_COLUMNS);
const HEADER = DEPLOYMENT_COLUMNS.map((c) => c.title);

const DeploymentLine = memo(function DeploymentLine({ row, widths, inverse, now }: { row: DeploymentView; widths: number[]; inverse: boolean; now: number }) {
  return <TableLine cells={deploymentCells(row, now)} widths={widths} colored={COLORED} inverse={inverse} />;
});

/** DeploymentsTable renders the header and the visible deployments (the container slices them). */
export const DeploymentsTable = memo(function DeploymentsTable({ rows, selected, width, now, empty }: DeploymentsTableProps) {
  const widths = deploymentWidths(width);
  return (
    <Box flexDirection="column" width={width}>
      <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
      {rows.length === 0 ? (
        <Text color="gray">{empty ?? 'No deployments (plan apply starts one when a group\'s spec changes).'}</Text>
      ) : (
        rows.map((d, i) => <DeploymentLine key={d.id} row={d} widths={widths} inverse={i === selected} now={now} />)
      )}
    </Box>
  );
});
