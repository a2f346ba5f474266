/**
 * Progress as plain lines on stderr (CI logs, pipes), and the frame every long operation's progress
 * follows: a title, its steps, then `<what> done`, `<what> finished with errors` or `<what> failed`.
 * src/cli/progress.ts adds the spinner (ora) on a terminal; the CLI's fast path (src/cli/fast-path.ts)
 * prints these lines only, with Node's own modules.
 */

/** ProgressSink receives the title, steps and end of one operation. */
export interface ProgressSink {
  start(title: string): void;
  step(line: string): void;
  stop(final?: string): void;
  fail(final: string): void;
}

/** LineProgress prints the title, each step (indented) and the final line as plain lines on stderr. */
export class LineProgress implements ProgressSink {
  constructor(private readonly quiet = false) {}

  start(title: string): void {
    if (!this.quiet) process.stderr.write(`${title}\n`);
  }

  step(line: string): void {
    if (!this.quiet) process.stderr.write(`  ${line}\n`);
  }

  stop(final?: string): void {
    if (final && !this.quiet) process.stderr.write(`${final}\n`);
  }

  fail(final: string): void {
    if (!this.quiet) process.stderr.write(`${final}\n`);
  }
}

/**
 * runWith runs an operation reporting to progress under `title`, and ends with `<what> done`,
 * `<what> finished with errors` (result.ok false) or `<what> failed` (thrown).
 */
export async function runWith<T extends { ok: boolean }>(progress: ProgressSink, what: string, title: string, op: (step: (line: string) => void) => Promise<T>): Promise<T> {
  progress.start(title);
  let result: T;
  try {
    result = await op((l) => progress.step(l));
  } catch (err) {
    progress.fail(`${what} failed`);
    throw err;
  }
  if (result.ok) progress.stop(`${what} done`);
  else progress.fail(`${what} finished with errors`);
  return result;
}
