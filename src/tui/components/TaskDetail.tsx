import { Box, Text } from 'ink';
import { formatBytes } from '../../cli/render.js';
import { restartText } from '../../cli/render-status.js';
import { isVmDriver } from '../../protocol/drivers.js';
import { taskDetailOf, taskStateOf, type TaskRow } from '../model.js';
import { stateColor } from '../palette.js';

/** TaskDetailProps: the selected task, the width and the clock (a crash loop's next restart). */
export interface TaskDetailProps {
  task: TaskRow;
  width: number;
  now: number;
}

/** TASK_DETAIL_HEIGHT is how many lines TaskDetail takes (border included). */
export const TASK_DETAIL_HEIGHT = 6;

/** TaskDetail is the drill-in panel of one task: where it runs, its states, resources and why it stopped. */
export function TaskDetail({ task: t, width, now }: TaskDetailProps) {
  const why = taskDetailOf(t);
  const detail = [why, restartText(t, now)].filter(Boolean).join('; ');
  const state = taskStateOf(t);
  return (
    <Box flexDirection="column" width={width} borderStyle="single" borderColor="gray" paddingX={1} height={TASK_DETAIL_HEIGHT}>
      <Text wrap="truncate" bold>
        {t.task} <Text color="gray">plan {t.plan} · group {t.group} · project {t.project}</Text>
      </Text>
      <Text wrap="truncate">
        agent {t.agent} · driver {t.driver} · state <Text color={stateColor(state)}>{state}</Text>
        {t.crashLoop ? ` (${t.state})` : ''}
        {t.state === 'running' && t.pid !== undefined ? ` · pid ${t.pid}` : ''}
        {t.power ? (
          <Text>
            {' · power '}
            <Text color={stateColor(t.power)}>{t.power}</Text>
          </Text>
        ) : null}
        {t.health ? (
          <Text>
            {' · health '}
            <Text color={stateColor(t.health)}>{t.health}</Text>
          </Text>
        ) : null}
      </Text>
      <Text wrap="truncate">
        cpus {t.resources.cpus} · mem {formatBytes(t.resources.mem)}
        {t.resources.gpus ? ` · gpus ${t.resources.gpus}` : ''}
        {t.startedAt ? ` · started ${t.startedAt}` : ''}
      </Text>
      <Text wrap="truncate" color={why || t.crashLoop ? 'red' : detail ? undefined : 'gray'}>
        {detail || 'l logs · r restart' + (isVmDriver(t.driver) ? ' · s start · x stop · b reboot' : '')}
      </Text>
    </Box>
  );
}
