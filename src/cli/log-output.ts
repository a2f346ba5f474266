/**
 * How `factory logs` and `factory jobs logs` print a log stream: the flags that choose what is
 * shown, the raw bytes to stdout and stderr (or with --json one object a line on stdout), and
 * SIGINT/SIGTERM ending a followed stream quietly.
 */
import { Flags } from '@oclif/core';

/** LogStreamName is which of a task's streams to show. */
export type LogStreamName = 'stdout' | 'stderr' | 'both';

/** logOutputFlags are the flags both log commands take to choose how much of which stream to show. */
export const logOutputFlags = {
  tail: Flags.integer({ char: 'n', summary: 'Only the last N lines of each stream.', min: 0 }),
  stream: Flags.string({ summary: 'Which stream to show.', options: ['stdout', 'stderr', 'both'], default: 'both' }),
};

/** LogSink is what printLogs hands the call that streams: where chunks go, and the signal that ends a followed stream. */
export interface LogSink {
  onData: (stream: 'stdout' | 'stderr', chunk: string) => void;
  signal: AbortSignal;
}

/**
 * printLogs runs `stream` with a sink that prints each chunk (raw, or with `json` one object a line
 * labelled `id`) and a signal that SIGINT or SIGTERM aborts; what is left of a --json line is
 * printed at the end.
 */
export async function printLogs(id: string, json: boolean, stream: (sink: LogSink) => Promise<void>): Promise<void> {
  const lines = json ? jsonLines(id) : undefined;
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    await stream({
      // --json: one object a line on stdout, both streams ({"task", "stream", "line"}); else the raw bytes
      onData: lines ? lines.push : (s, chunk) => void (s === 'stderr' ? process.stderr : process.stdout).write(chunk),
      signal: ac.signal,
    });
  } finally {
    lines?.end();
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
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
