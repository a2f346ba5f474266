/**
 * Progress reporting on stderr: a spinner with the current step on a TTY, plain lines otherwise
 * (CI logs, pipes, src/cli/progress-lines.ts), and nothing when quiet (plan diff --json or --offline).
 */
import ora, { type Ora } from 'ora';
import { LineProgress, runWith, type ProgressSink } from './progress-lines.js';

/** Progress prints steps of a long operation on stderr. */
export class Progress implements ProgressSink {
  private spinner?: Ora;
  private readonly tty: boolean;
  private readonly lines: LineProgress;

  constructor(private readonly quiet = false) {
    this.tty = Boolean(process.stderr.isTTY) && !process.env.CI;
    this.lines = new LineProgress(quiet);
  }

  /** start begins an operation with a title. */
  start(title: string): void {
    if (this.quiet) return;
    if (this.tty) this.spinner = ora({ text: title, stream: process.stderr }).start();
    else this.lines.start(title);
  }

  /** step reports one step: on a TTY it is printed above the spinner. */
  step(line: string): void {
    if (this.quiet) return;
    if (this.spinner) {
      this.spinner.clear();
      process.stderr.write(`  ${line}\n`);
      this.spinner.render();
    } else {
      this.lines.step(line);
    }
  }

  /** stop ends the spinner, leaving a final line. */
  stop(final?: string): void {
    if (this.spinner) {
      if (final) this.spinner.succeed(final);
      else this.spinner.stop();
      this.spinner = undefined;
    } else {
      this.lines.stop(final);
    }
  }

  /** fail ends the spinner with a failure mark. */
  fail(final: string): void {
    if (this.spinner) {
      this.spinner.fail(final);
      this.spinner = undefined;
    } else {
      this.lines.fail(final);
    }
  }
}

/**
 * runWithProgress runs an operation under a spinner titled `title`, reporting its steps, and ends
 * with `<what> done`, `<what> finished with errors` (result.ok false) or `<what> failed` (thrown).
 */
export async function runWithProgress<T extends { ok: boolean }>(what: string, title: string, op: (step: (line: string) => void) => Promise<T>): Promise<T> {
  return runWith(new Progress(false), what, title, op);
}
