import { Box, Text } from 'ink';
import { memo } from 'react';
import type { DeploymentsTotals } from '../deployments-model.js';
import type { JobsTotals } from '../jobs-model.js';
import type { DashboardModel } from '../model.js';
import { VIEWS, type View } from '../navigation.js';

/** HeaderBarProps: the current view, the model's totals (and the jobs'), where the state comes from and when it was read. */
export interface HeaderBarProps {
  view: View;
  totals: DashboardModel['totals'];
  /** jobs counts the scheduled jobs (shown when there are any). */
  jobs?: JobsTotals;
  /** deployments counts the deployments in progress (shown when there are any). */
  deployments?: DeploymentsTotals;
  stateLabel: string;
  readAt: number;
  width: number;
}

// the tabs, the time and a control host's https://127.0.0.1:NNNNN fit 100 columns ("Deploys": 100, "Deployments" would be 104)
const TITLES: Record<View, string> = { overview: 'Overview', agents: 'Agents', tasks: 'Tasks', events: 'Events', jobs: 'Jobs', deployments: 'Deploys' };

function counts(by: Record<string, number>, order: string[]): string {
  const keys = [...order.filter((k) => by[k]), ...Object.keys(by).filter((k) => !order.includes(k)).sort()];
  return keys.map((k) => `${by[k]} ${k}`).join(', ');
}

/** HeaderBar is the top two lines: the view tabs, then agent, task, job and deployment counts and the state's read time. */
export const HeaderBar = memo(function HeaderBar({ view, totals, jobs, deployments: deps, stateLabel, readAt, width }: HeaderBarProps) {
  const time = new Date(readAt).toTimeString().slice(0, 8);
  const jobsSummary = jobs?.jobs ? ` · jobs ${jobs.jobs}${jobs.going || jobs.suspended ? ` (${counts({ going: jobs.going, suspended: jobs.suspended }, ['going', 'suspended'])})` : ''}` : '';
  const deploySummary = deps?.active ? ` · deploying ${deps.active}${deps.waiting || deps.paused ? ` (${counts({ 'to promote': deps.waiting, paused: deps.paused }, ['to promote', 'paused'])})` : ''}` : '';
  const summary = `agents ${totals.agents}${totals.agents ? ` (${counts(totals.agentsByState, ['ready', 'draining', 'lost', 'down', 'unknown'])})` : ''} · tasks ${totals.tasks}${totals.tasks ? ` (${counts(totals.tasksByState, ['running', 'pending', 'crash-loop', 'failed', 'exited', 'lost'])})` : ''}${jobsSummary}${deploySummary}`;
  return (
    <Box flexDirection="column" width={width}>
      <Text wrap="truncate">
        <Text bold>factory</Text>
        {VIEWS.map((v, i) => (
          <Text key={v} inverse={v === view} bold={v === view}>
            {` ${i + 1} ${TITLES[v]} `}
          </Text>
        ))}
        <Text color="gray">{` ${time} ${stateLabel}`}</Text>
      </Text>
      <Text wrap="truncate">{summary}</Text>
    </Box>
  );
});
