import { FactoryCommand } from '../../cli/base.js';
import { formatBytes, table } from '../../cli/render.js';
import { foreignCountText, status, type StatusAgent } from '../../control/status.js';

type Vec = { cpus?: number; mem?: number; disk?: number; gpus?: number } | undefined;

/** capacityText renders cpus/mem/disk/gpus of a (partial) resource vector; '-' when empty. */
function capacityText(r: Vec): string {
  if (!r) return '-';
  const parts: string[] = [];
  if (r.cpus !== undefined) parts.push(`cpus ${r.cpus}`);
  if (r.mem !== undefined) parts.push(`mem ${formatBytes(r.mem)}`);
  if (r.disk !== undefined) parts.push(`disk ${formatBytes(r.disk)}`);
  if (r.gpus) parts.push(`gpus ${r.gpus}`);
  return parts.join(' ') || '-';
}

/** AgentsList shows each agent of the inventory with its state, capacity (effective, declared, discovered) and attributes. */
export default class AgentsList extends FactoryCommand<typeof AgentsList> {
  static override summary = 'List the agents of the inventory: state, capacity (declared wins over discovered), drivers, attributes.';
  static override examples = ['<%= config.bin %> agents list', '<%= config.bin %> agents list --json --inventory inventory.yaml'];

  protected async execute(): Promise<{ agents: StatusAgent[] }> {
    const r = await this.onHost(
      (host) => host.status({ cached: false, events: 0 }),
      () => status({ stateDir: this.flags.state, inventoryPath: this.flags.inventory }),
    );
    // a FOREIGN column (tasks other factory states run there) only when some agent has any
    const foreign = r.agents.some((a) => a.foreign?.length);
    const rows = r.agents.map((a) => [
      a.name,
      `${a.idc}/${a.cluster}`,
      a.state + (a.error ? ` (${a.error.slice(0, 60)})` : ''),
      capacityText(a.resources),
      capacityText(a.declared),
      capacityText(a.discovered),
      a.drivers.join(','),
      ...(foreign ? [foreignCountText(a.foreign)] : []),
      Object.entries(a.attributes)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    ]);
    this.human(table(['AGENT', 'IDC/CLUSTER', 'STATE', 'CAPACITY', 'DECLARED', 'DISCOVERED', 'DRIVERS', ...(foreign ? ['FOREIGN'] : []), 'ATTRIBUTES'], rows));
    return { agents: r.agents };
  }
}
