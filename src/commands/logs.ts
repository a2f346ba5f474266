import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../cli/base.js';
import { logOutputFlags, printLogs, type LogStreamName } from '../cli/log-output.js';
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
    ...logOutputFlags,
  };

  protected async execute(): Promise<undefined> {
    await printLogs(this.args.task, this.flags.json, async (sink) => {
      const req = { task: this.args.task, follow: this.flags.follow, tail: this.flags.tail, stream: this.flags.stream as LogStreamName, ...sink };
      await this.onHost(
        (host) => host.logs(req),
        () => logs({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, ...req }),
      );
    });
    return undefined;
  }
}
