import { Text } from 'ink';
import { memo } from 'react';
import type { PendingAction } from '../navigation.js';

/** StatusLineProps: what the line above the help bar shows, in priority order. */
export interface StatusLineProps {
  confirm?: PendingAction;
  editingFilter: boolean;
  filter: string;
  busy?: string;
  message?: string;
  error?: string;
  /** position is `12/3400` (selected/total) of the current list. */
  position: string;
  scopeLabel?: string;
}

/** StatusLine shows a confirmation question, the filter being typed, a running action, a message, or where you are. */
export const StatusLine = memo(function StatusLine({ confirm, editingFilter, filter, busy, message, error, position, scopeLabel }: StatusLineProps) {
  if (confirm) {
    return (
      <Text wrap="truncate" color="yellow" bold>
        {confirm.prompt} [y/N]
      </Text>
    );
  }
  if (editingFilter) {
    return (
      <Text wrap="truncate">
        <Text color="cyan">/</Text>
        {filter}
        <Text inverse> </Text>
        <Text color="gray">{`  ${position}`}</Text>
      </Text>
    );
  }
  const where = [position, scopeLabel, filter ? `filter "${filter}"` : ''].filter(Boolean).join(' · ');
  return (
    <Text wrap="truncate">
      {busy ? <Text color="yellow">{`… ${busy} `}</Text> : null}
      {!busy && message ? <Text color="cyan">{`${message} `}</Text> : null}
      {error ? <Text color="red">{`${error} `}</Text> : null}
      <Text color="gray">{where}</Text>
    </Text>
  );
});
