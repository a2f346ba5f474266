import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../cli/base.js';
import { logs } from '../control/status.js';

/** Logs prints a task's output from its agent; -f follows it until interrupted. */
export default class Logs extends FactoryCommand<typeof Logs> {
  static override summary = "Show a task's output (stdout and stderr); -f follows it.";
  static override examples = [
    '<%= config.bin %> logs quickstart/ticker/0',
    '<%= config.bin %> logs ticker/0 -f',
    '<%= config.bin %> logs quickstart/ticker/1 --stream stderr --tail 20',
  ];
  static override args = { task: Args.string({ description: 'task id plan/group/index (a unique suffix is enough)', required: true }) };
  static override flags = {
    follow: Flags.boolean({ char: 'f', summary: 'Keep printing new output until interrupted.', default: false }),
    tail: Flags.integer({ char: 'n', summary: 'Only the last N lines of each stream.', min: 0 }),
    stream: Flags.string({ summary: 'Which stream to show.', options: ['stdout', 'stderr', 'both'], default: 'both' }),
  };

  protected async execute(): Promise<undefined> {
    const json = this.flags.json ? jsonLines(this.args.task) : undefined;
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    try {
      const req = {
        task: this.args.task,
        follow: this.flags.follow,
        tail: this.flags.tail,
        stream: this.flags.stream as 'stdout' | 'stderr' | 'both',
        // --json: one object a line on stdout, both streams ({"task", "stream", "line"}); else the raw bytes
        onData: json ? json.push : (stream: 'stdout' | 'stderr', chunk: string) => void (stream === 'stderr' ? process.stderr : process.stdout).write(chunk),
        signal: ac.signal,
      };
      await this.onHost(
        (host) => host.logs(req),
        () => logs({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, ...req }),
      );
    } finally {
      json?.end();
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
    return undefined;
  }
}

/**
 * jsonLines turns a task's output chunks into one JSON object a line on stdout, per stream: a line
 * split across chunks is printed once it is whole, and what is left at the end is printed too.
 */
export function jsonLines(task: string, write: (s: string) => void = (s) => void process.stdout.write(s)): { push: (stream: 'stdout' | 'stderr', chunk: string) => void; end: () => void } {
  const rest: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  const emit = (stream: 'stdout' | 'stderr', line: string) => write(`${JSON.stringify({ task, stream, line })}\n`);
  return {
    push: (stream, chunk) => {
      const text = rest[stream] + chunk;
      const lines = text.split('\n');
      rest[stream] = lines.pop() ?? '';
      for (const l of lines) emit(stream, l);
    },
    end: () => {
      for (const stream of ['stdout', 'stderr'] as const) if (rest[stream]) emit(stream, rest[stream]);
      rest.stdout = rest.stderr = '';
    },
  };
}
