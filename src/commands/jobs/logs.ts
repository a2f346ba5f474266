import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { runLogs } from '../../control/jobs.js';
import { jsonLines } from '../logs.js';

/** JobsLogs prints a run's output from its agent; -f follows it until the run ends. */
export default class JobsLogs extends FactoryCommand<typeof JobsLogs> {
  static override summary = "Show a run's output (stdout and stderr); -f follows it until the run ends.";
  static override examples = ['<%= config.bin %> jobs logs nightly', '<%= config.bin %> jobs logs etl/nightly/2026-12-01T02:00:00.000Z -f'];
  static override args = { run: Args.string({ description: 'run id plan/job/slot, or a job for its newest run', required: true }) };
  static override flags = {
    follow: Flags.boolean({ char: 'f', summary: 'Keep printing new output until the run ends or interrupted.', default: false }),
    tail: Flags.integer({ char: 'n', summary: 'Only the last N lines of each stream.', min: 0 }),
    stream: Flags.string({ summary: 'Which stream to show.', options: ['stdout', 'stderr', 'both'], default: 'both' }),
  };

  protected async execute(): Promise<undefined> {
    const json = this.flags.json ? jsonLines(this.args.run) : undefined;
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    try {
      const req = {
        run: this.args.run,
        follow: this.flags.follow,
        tail: this.flags.tail,
        stream: this.flags.stream as 'stdout' | 'stderr' | 'both',
        onData: json ? json.push : (stream: 'stdout' | 'stderr', chunk: string) => void (stream === 'stderr' ? process.stderr : process.stdout).write(chunk),
        signal: ac.signal,
      };
      await this.onHost(
        (host) => host.runLogs(req),
        () => runLogs({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, ...req }),
      );
    } finally {
      json?.end();
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
    return undefined;
  }
}
