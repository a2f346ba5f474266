/**
 * The oclif `command_not_found` hook: an unknown command is an error like any other — one line,
 * a did-you-mean, exit 1 (exit 2 means "changes present" to scripts using --detailed-exitcode).
 */
import type { Hook } from '@oclif/core';
import { levenshtein } from '../spec/suggest.js';

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
    .map((k) => ({ k, d: levenshtein(asked, k) }))
    .sort((x, y) => x.d - y.d)
    .find((x) => x.d <= Math.max(2, Math.floor(asked.length / 3)));
  process.stderr.write(`factory: unknown command '${asked}'${best ? ` (did you mean '${best.k}'?)` : ''}\n`);
  process.stderr.write(`hint: run 'factory --help' for the list of commands\n`);
  process.exit(1);
};

export default commandNotFound;
