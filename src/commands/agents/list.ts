import { FactoryCommand } from '../../cli/base.js';
import { formatBytes, table } from '../../cli/render.js';
import { status, type StatusAgent } from '../../control/status.js';

/** AgentsList shows each agent of the inventory with its state, capacity and attributes. */
export default class AgentsList extends FactoryCommand<typeof AgentsList> {
  static override summary = 'List the agents of the inventory with state, capacity and attributes.';
  static override examples = ['<%= config.bin %> agents list', '<%= config.bin %> agents list --json --inventory inventory.yaml'];

  protected async execute(): Promise<{ agents: StatusAgent[] }> {
    const r = await status({ stateDir: this.flags.state, inventoryPath: this.flags.inventory });
    const rows = r.agents.map((a) => [
      a.name,
      `${a.idc}/${a.cluster}`,
      a.state,
      `cpus ${a.resources.cpus} mem ${formatBytes(a.resources.mem)} disk ${formatBytes(a.resources.disk)}${a.resources.gpus ? ` gpus ${a.resources.gpus}` : ''}`,
      a.drivers.join(','),
      Object.entries(a.attributes)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    ]);
    this.human(table(['AGENT', 'IDC/CLUSTER', 'STATE', 'CAPACITY', 'DRIVERS', 'ATTRIBUTES'], rows));
    return { agents: r.agents };
  }
}
