/**
 * The oclif `command_not_found` hook: an unknown command is an error like any other — one line,
 * a did-you-mean, exit 1 (exit 2 means "changes present" to scripts using --detailed-exitcode).
 */
import type { Hook } from '@oclif/core';

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * unknownPart is the command a user mistyped, without the arguments oclif folded into it:
 * `plan aply x` → `plan aply` (the known topic `plan`, then the word that is not a command).
 */
export function unknownPart(words: string[], known: string[]): string {
  let k = 0;
  while (k < words.length && known.some((c) => c.startsWith(`${words.slice(0, k + 1).join(' ')} `))) k++;
  return words.slice(0, k + 1).join(' ');
}

/** commandNotFound prints the unknown command with the closest known one and exits 1. */
const commandNotFound: Hook<'command_not_found'> = async function (opts) {
  const known = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id.split(':').join(' '));
  const asked = unknownPart(opts.id.split(':'), known);
  const best = known
    .map((k) => ({ k, d: distance(asked, k) }))
    .sort((x, y) => x.d - y.d)
    .find((x) => x.d <= Math.max(2, Math.floor(asked.length / 3)));
  process.stderr.write(`factory: unknown command '${asked}'${best ? ` (did you mean '${best.k}'?)` : ''}\n`);
  process.stderr.write(`hint: run 'factory --help' for the list of commands\n`);
  process.exit(1);
};

export default commandNotFound;
