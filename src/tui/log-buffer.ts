/**
 * LogBuffer keeps the last lines of a task's output for the logs pane: chunks are split into lines
 * (a partial last line waits for its end), control characters and escape sequences are removed so
 * a task cannot move the cursor or recolour the dashboard, and tabs become spaces.
 */

// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-_]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** LogBuffer holds at most `max` complete lines plus the current partial one. */
export class LogBuffer {
  private readonly done: string[] = [];
  private partial = '';

  constructor(private readonly max: number) {}

  /** push adds a chunk of output. */
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.done.push(clean(p));
    if (this.done.length > this.max) this.done.splice(0, this.done.length - this.max);
  }

  /** lines returns the kept lines, the partial one last when there is one. */
  lines(): string[] {
    return this.partial ? [...this.done, clean(this.partial)] : [...this.done];
  }
}

function clean(line: string): string {
  return line.replace(/\r$/, '').replace(ESCAPES, '').replace(/\t/g, '  ').replace(CONTROLS, '');
}
