import { Box, Text } from 'ink';

/** HelpOverlayProps: the width, the height available, and whether VM actions are available. */
export interface HelpOverlayProps {
  width: number;
  height: number;
  vmActions: boolean;
}

/** HELP_LINES are the dashboard's keys, one per line. */
export const HELP_LINES: [string, string][] = [
  ['↑ ↓  j k', 'move; PgUp PgDn / space page; g G first / last'],
  ['tab ← →  1-6', 'switch view: overview, agents, tasks, events, jobs, deployments'],
  ['Enter', 'drill in: cluster → its agents → an agent\'s tasks → task detail; an event → its deployment, task, job or agent; a deployment → its group\'s tasks'],
  ['Esc', 'back: close a panel, clear the filter, leave a drill-in'],
  ['/', 'filter: words must all match; key:value works (state:failed agent:h1 driver:libvirt)'],
  ['l', 'follow the selected task\'s logs'],
  ['r', 'restart the selected task (asks first)'],
  ['d', 'drain / undrain the selected agent: its tasks move elsewhere (asks first)'],
  ['s x b', 'start / stop / reboot the selected VM (asks first)'],
  ['r  (jobs)', 'run the selected job now, outside its schedule (asks first)'],
  ['s  (jobs)', 'suspend / resume the selected job (asks first)'],
  ['?', 'this help'],
  ['q  Ctrl-C', 'quit'],
];

/** HelpOverlay lists every key and what it does. */
export function HelpOverlay({ width, height, vmActions }: HelpOverlayProps) {
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text bold>Keys</Text>
      {HELP_LINES.slice(0, Math.max(0, height - 2)).map(([k, what]) => (
        <Text key={k} wrap="truncate">
          <Text color="cyan">{k.padEnd(14)}</Text>
          {what}
          {k === 's x b' && !vmActions ? ' (unavailable in this build)' : ''}
        </Text>
      ))}
      <Text color="gray">Esc or ? closes this help.</Text>
    </Box>
  );
}
