import { Box, Text } from 'ink';
import { memo } from 'react';
import type { EventRecord } from '../../state/types.js';
import { eventColor } from '../palette.js';

/** EventsPaneProps: the visible events (newest first), the selected one, a title line and the width. */
export interface EventsPaneProps {
  events: EventRecord[];
  /** selected is an index into events, or -1 when the pane is not focused. */
  selected: number;
  width: number;
  title?: string;
}

/** eventTime prints an event's time as HH:MM:SS in local time (the date is dropped: events are recent). */
export function eventTime(iso: string): string {
  const d = new Date(iso);
  return Number.isFinite(d.getTime()) ? d.toTimeString().slice(0, 8) : iso.slice(11, 19);
}

/** EventsPane lists events: task started / failed / restarted, agent lost / back, plan applied. */
export const EventsPane = memo(function EventsPane({ events, selected, width, title }: EventsPaneProps) {
  return (
    <Box flexDirection="column" width={width}>
      {title ? (
        <Text bold wrap="truncate">
          {title}
        </Text>
      ) : null}
      {events.length === 0 ? <Text color="gray">No events yet.</Text> : null}
      {events.map((e, i) => (
        <Text key={`${e.at}:${i}`} wrap="truncate" inverse={i === selected}>
          <Text color="gray">{eventTime(e.at)} </Text>
          <Text color={eventColor(e.kind)}>{e.kind.padEnd(15)}</Text> {e.message}
        </Text>
      ))}
    </Box>
  );
});
