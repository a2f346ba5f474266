import { Box, Text } from 'ink';
import { memo } from 'react';
import { formatBytes } from '../../cli/render.js';
import { compactNumber } from '../layout.js';
import type { OverviewLine } from '../model.js';
import { stateColor } from '../palette.js';
import { CapacityBar } from './CapacityBar.js';

/** OverviewPaneProps: the visible overview lines, which one is selected, and the width. */
export interface OverviewPaneProps {
  lines: OverviewLine[];
  /** selected is an index into lines, or -1. */
  selected: number;
  width: number;
  ascii?: boolean;
  /** empty is shown when there is nothing at all. */
  empty?: string;
}

const STATE_ORDER = ['ready', 'draining', 'lost', 'down', 'unknown'];

/** OverviewPane lists IDCs and their clusters with cpus / mem / gpus bars and agents by state. */
export const OverviewPane = memo(function OverviewPane({ lines, selected, width, ascii, empty }: OverviewPaneProps) {
  if (lines.length === 0) return <Text color="gray">{empty ?? 'No agents in the state yet: apply a plan, or wait for the first refresh.'}</Text>;
  const nameWidth = Math.max(10, Math.min(24, Math.floor(width * 0.18)));
  const wide = width >= 130;
  const barWidth = wide ? 10 : width >= 120 ? 6 : 4;
  return (
    <Box flexDirection="column" width={width}>
      {lines.map((l, i) => {
        const s = l.summary;
        const name = l.kind === 'idc' ? l.idc : `  ${l.cluster}`;
        const label = name.length > nameWidth ? `${name.slice(0, nameWidth - 1)}…` : name.padEnd(nameWidth);
        const states = [...STATE_ORDER.filter((k) => s.byState[k]), ...Object.keys(s.byState).filter((k) => !STATE_ORDER.includes(k))];
        return (
          <Text key={`${l.kind}:${l.idc}:${l.kind === 'cluster' ? l.cluster : ''}`} wrap="truncate" inverse={i === selected} bold={l.kind === 'idc'}>
            {label} {String(s.agents).padStart(5)} ag {String(s.tasks).padStart(6)} tk{' '}
            <CapacityBar label="cpu" used={s.used.cpus} total={s.capacity.cpus} width={barWidth} ascii={ascii} />{' '}
            <CapacityBar label="mem" used={s.used.mem} total={s.capacity.mem} width={barWidth} ascii={ascii} />{' '}
            {s.capacity.gpus > 0 || wide ? <CapacityBar label="gpu" used={s.used.gpus} total={s.capacity.gpus} width={barWidth} ascii={ascii} /> : null}
            {wide ? <Text color="gray">{` ${compactNumber(s.used.cpus)}/${compactNumber(s.capacity.cpus)} cpus ${formatBytes(s.used.mem)}/${formatBytes(s.capacity.mem)}`}</Text> : null}{' '}
            {states.map((k) => (
              <Text key={k} color={stateColor(k)}>{`${s.byState[k]} ${k} `}</Text>
            ))}
          </Text>
        );
      })}
    </Box>
  );
});
