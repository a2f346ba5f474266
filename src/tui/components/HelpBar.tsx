import { Text } from 'ink';
import { memo } from 'react';
import type { View } from '../navigation.js';

/** HelpBarProps: the view (its own keys come first after quit and help). */
export interface HelpBarProps {
  view: View;
  /** mode is an open panel whose keys replace the usual ones. */
  mode?: 'filter' | 'logs' | 'help' | 'confirm';
}

/** helpBarKeys returns the key hints the help bar shows for a view or panel, most important first. */
export function helpBarKeys(view: View, mode?: HelpBarProps['mode']): [string, string][] {
  if (mode === 'filter') return [['Enter', 'keep'], ['Esc', 'clear'], ['⌫', 'delete']];
  if (mode === 'logs') return [['Esc', 'close logs'], ['q', 'quit']];
  if (mode === 'help') return [['Esc', 'close'], ['q', 'quit']];
  if (mode === 'confirm') return [['y', 'yes'], ['n', 'no']];
  const own: Record<View, [string, string][]> = {
    overview: [['⏎', 'agents']],
    agents: [['⏎', 'tasks'], ['d', 'drain']],
    tasks: [['⏎', 'detail'], ['l', 'logs'], ['r', 'restart'], ['s/x/b', 'vm']],
    events: [['⏎', 'open']],
    jobs: [['r', 'run now'], ['s', 'suspend/resume']],
    deployments: [['⏎', 'its tasks']],
  };
  return [['q', 'quit'], ['?', 'help'], ['↑↓', 'move'], ...own[view], ['/', 'filter'], ['tab', 'view'], ['Esc', 'back']];
}

/** HelpBar is the bottom line: the keys that work here. */
export const HelpBar = memo(function HelpBar({ view, mode }: HelpBarProps) {
  return (
    <Text wrap="truncate">
      {helpBarKeys(view, mode).map(([k, what], i) => (
        <Text key={k}>
          {i > 0 ? '  ' : ''}
          <Text inverse>{` ${k} `}</Text>
          {` ${what}`}
        </Text>
      ))}
    </Text>
  );
});
