import { Box, Text } from 'ink';

/** LogsPaneProps: the task, the last lines of its output, the space available and a status note. */
export interface LogsPaneProps {
  task: string;
  lines: string[];
  width: number;
  height: number;
  note?: string;
}

/** LogsPane shows the end of a task's output, followed live; Esc closes it. */
export function LogsPane({ task, lines, width, height, note }: LogsPaneProps) {
  const shown = lines.slice(-Math.max(0, height - 1));
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text bold wrap="truncate">
        logs {task} <Text color="gray">{note ?? '(following; Esc closes)'}</Text>
      </Text>
      {shown.length === 0 ? <Text color="gray">no output yet</Text> : null}
      {shown.map((l, i) => (
        <Text key={i} wrap="truncate">
          {l || ' '}
        </Text>
      ))}
    </Box>
  );
}
