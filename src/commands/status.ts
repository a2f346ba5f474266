import { Flags } from '@oclif/core';
import { FactoryCommand } from '../cli/base.js';
import { renderStatus, type StatusView } from '../cli/render-status.js';
import { status } from '../control/status.js';

/** Status lists agents and tasks as the agents report them now (pid, state, limits). */
export default class Status extends FactoryCommand<typeof Status> {
  static override summary = 'List agents and tasks: agent, driver, pid and state, as the agents report them.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json', '<%= config.bin %> status --cached'];
  static override flags = {
    cached: Flags.boolean({ summary: 'Show the state file as recorded; do not ask the agents.', default: false }),
    events: Flags.integer({ summary: 'How many recent events to show.', default: 10 }),
  };

  protected async execute(): Promise<StatusView> {
    const r = await this.onHost(
      (host) => host.status({ cached: this.flags.cached, events: this.flags.events }),
      () => status({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, cached: this.flags.cached, events: this.flags.events }),
    );
    this.human(renderStatus(r, { cached: this.flags.cached, events: this.flags.events }));
    return r;
  }
}
