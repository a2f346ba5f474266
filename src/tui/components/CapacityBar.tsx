import { Text } from 'ink';
import { bar, percent } from '../layout.js';

/** CapacityBarProps: a label, used and total amounts, the bar's width, and how to print amounts. */
export interface CapacityBarProps {
  label: string;
  used: number;
  total: number;
  width: number;
  ascii?: boolean;
}

/** CapacityBar draws `label ███░░ 42%` inline (inside a row's Text), red above 90 %, yellow above 70 %. */
export function CapacityBar({ label, used, total, width, ascii }: CapacityBarProps) {
  const f = total > 0 ? used / total : 0;
  const color = total === 0 ? 'gray' : f > 0.9 ? 'red' : f > 0.7 ? 'yellow' : 'green';
  return (
    <Text>
      {label} <Text color={color}>{bar(f, width, ascii)}</Text> {percent(used, total).padStart(4)}
    </Text>
  );
}
