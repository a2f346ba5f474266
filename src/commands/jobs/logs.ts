import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { logOutputFlags, printLogs, type LogStreamName } from '../../cli/log-output.js';
import { runLogs } from '../../control/jobs.js';

/** JobsLogs prints a run's output from its agent; -f follows it until the run ends. */
export default class JobsLogs extends FactoryCommand<typeof JobsLogs> {
  static override summary = "Show a run's output (stdout and stderr); -f follows it until the run ends.";
  static override examples = ['<%= config.bin %> jobs logs nightly', '<%= config.bin %> jobs logs etl/nightly/2026-12-01T02:00:00.000Z -f'];
  static override args = { run: Args.string({ description: 'run id plan/job/slot, or a job for its newest run', required: true }) };
  static override flags = {
    follow: Flags.boolean({ char: 'f', summary: 'Keep printing new output until the run ends or interrupted.', default: false }),
    ...logOutputFlags,
  };

  protected async execute(): Promise<undefined> {
    await printLogs(this.args.run, this.flags.json, async (sink) => {
      const req = { run: this.args.run, follow: this.flags.follow, tail: this.flags.tail, stream: this.flags.stream as LogStreamName, ...sink };
      await this.onHost(
        (host) => host.runLogs(req),
        () => runLogs({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, ...req }),
      );
    });
    return undefined;
  }
}
