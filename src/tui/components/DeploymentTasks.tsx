import { Box, Text } from 'ink';
import { memo } from 'react';
import { type Column } from '../layout.js';
import type { DeploymentView } from '../deployments-model.js';
import { slotText } from '../jobs-model.js';
import type { DeploymentTask } from '../../deploy/types.js';
import { stateColor } from '../palette.js';
import { TableLine, columnWidths } from './TableLine.js';

/** DeploymentTasksProps: the selected deployment, the width and the lines the pane may take. */
export interface DeploymentTasksProps {
  deployment?: DeploymentView;
  width: number;
  height: number;
}

/** DEPLOYMENT_TASK_COLUMNS are the pane's columns, `factory deploy status`'s. */
export const DEPLOYMENT_TASK_COLUMNS: Column[] = [
  { title: 'TASK', width: 18, min: 10, flex: true },
  { title: 'STATE', width: 8 },
  { title: 'STARTED', width: 20, drop: 2 },
  { title: 'HEALTHY AT', width: 20, drop: 3 },
  { title: 'NOTE', width: 12, min: 6, flex: true, drop: 1 },
];

/** COLORED: STATE takes its state's colour. */
const COLORED: ReadonlySet<number> = new Set([1]);

/** deploymentTaskCells returns a new task's cells in DEPLOYMENT_TASK_COLUMNS order (NOTE: canary, why it failed). */
export function deploymentTaskCells(t: DeploymentTask): string[] {
  return [t.task, t.state, slotText(t.startedAt), slotText(t.healthyAt), [t.canary ? 'canary' : '', t.error ?? ''].filter(Boolean).join(': ')];
}

const taskWidths = columnWidths(DEPLOYMENT_TASK_COLUMNS);
const HEADER = DEPLOYMENT_TASK_COLUMNS.map((c) => c.title);

/** deploymentTasksHeight is how many lines the pane takes under the deployments table: its two lines of summary, a header and up to 7 tasks. */
export function deploymentTasksHeight(bodyHeight: number): number {
  return Math.min(10, Math.max(3, Math.floor(bodyHeight * 0.45)));
}

/**
 * DeploymentTasks is the pane under the deployments table, as `factory deploy status` shows one: where
 * the selected deployment stands and why, its policy and specs, what could not be placed, and each
 * new task's progress.
 */
export const DeploymentTasks = memo(function DeploymentTasks({ deployment: d, width, height }: DeploymentTasksProps) {
  const widths = taskWidths(width);
  if (!d) return <Box height={height} />;
  const unplaced = d.unplaced?.length ? `unplaced: ${d.unplaced.map((u) => `${u.task}: ${u.reason}`).join('; ')}` : '';
  const room = Math.max(0, height - 3 - (unplaced ? 1 : 0));
  const shown = d.tasks.slice(0, room);
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text wrap="truncate" bold>
        {`${d.id} ${d.plan}/${d.group}: `}
        <Text color={stateColor(d.status)}>{d.status}</Text>
        <Text color="gray">{` · ${d.old} old, ${d.new} new, ${d.healthy} healthy (a group of ${d.count})${d.canary ? `; canaries ${d.promoted ? 'promoted' : 'not promoted'}` : ''}${d.message ? ` — ${d.message}` : ''}`}</Text>
      </Text>
      <Text wrap="truncate" color="gray">
        {`${d.policy}; spec ${d.fromHash} → ${d.toHash}; started ${slotText(d.createdAt)}${d.by ? ` by ${d.by}` : ''}${d.finishedAt ? `; ended ${slotText(d.finishedAt)}` : ''}${d.tasks.length > shown.length ? ` · tasks ${shown.length} of ${d.tasks.length}` : ''}`}
      </Text>
      {unplaced ? (
        <Text wrap="truncate" color="yellow">
          {unplaced}
        </Text>
      ) : null}
      {d.tasks.length === 0 ? (
        <Text color="gray">No task started on the new spec yet.</Text>
      ) : (
        <>
          <TableLine cells={HEADER} widths={widths} colored={COLORED} bold />
          {shown.map((t) => (
            <TableLine key={t.task} cells={deploymentTaskCells(t)} widths={widths} colored={COLORED} />
          ))}
        </>
      )}
    </Box>
  );
});
