/**
 * Progress reporting on stderr: a spinner with the current step on a TTY, plain lines otherwise
 * (CI logs, pipes), and nothing at all with --quiet.
 */
import ora, { type Ora } from 'ora';

/** Progress prints steps of a long operation on stderr. */
export class Progress {
  private spinner?: Ora;
  private readonly tty: boolean;

  constructor(private readonly quiet = false) {
    this.tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  }

  /** start begins an operation with a title. */
  start(title: string): void {
    if (this.quiet) return;
    if (this.tty) this.spinner = ora({ text: title, stream: process.stderr }).start();
    else process.stderr.write(`${title}\n`);
  }

  /** step reports one step: on a TTY it is printed above the spinner. */
  step(line: string): void {
    if (this.quiet) return;
    if (this.spinner) {
      this.spinner.clear();
      process.stderr.write(`  ${line}\n`);
      this.spinner.render();
    } else {
      process.stderr.write(`  ${line}\n`);
    }
  }

  /** stop ends the spinner, leaving a final line. */
  stop(final?: string): void {
    if (this.spinner) {
      if (final) this.spinner.succeed(final);
      else this.spinner.stop();
      this.spinner = undefined;
    } else if (final && !this.quiet) {
      process.stderr.write(`${final}\n`);
    }
  }

  /** fail ends the spinner with a failure mark. */
  fail(final: string): void {
    if (this.spinner) {
      this.spinner.fail(final);
      this.spinner = undefined;
    } else if (!this.quiet) {
      process.stderr.write(`${final}\n`);
    }
  }
}

/**
 * runWithProgress runs an operation under a spinner titled `title`, reporting its steps, and ends
 * with `<what> done`, `<what> finished with errors` (result.ok false) or `<what> failed` (thrown).
 */
export async function runWithProgress<T extends { ok: boolean }>(
  what: string,
  title: string,
  op: (step: (line: string) => void) => Promise<T>,
): Promise<T> {
  const progress = new Progress(false);
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
