import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { inventoryAgents } from '../../control/agents.js';
import { doctorAgents, type DoctorReport } from '../../control/doctor.js';
import { FactoryError } from '../../errors.js';
import { resolveInventory } from '../../spec/index.js';

/** AgentsDoctor checks reachability, Node, disk, Docker, libvirt/QEMU and KVM on agents and says how to fix what is missing. */
export default class AgentsDoctor extends FactoryCommand<typeof AgentsDoctor> {
  static override summary = 'Check agents: reachability, Node, disk, Docker, libvirt/QEMU, KVM — and how to fix what is missing.';
  static override examples = ['<%= config.bin %> agents doctor', '<%= config.bin %> agents doctor h1 h2 --json'];
  static override strict = false;
  static override args = { agents: Args.string({ description: 'agent names (default: all)', required: false }) };

  protected async execute(): Promise<{ agents: DoctorReport[] }> {
    const inv = await resolveInventory(this.flags.inventory);
    const names = this.positionals.length ? this.positionals : undefined;
    const agents = inventoryAgents(inv, names);
    const unknown = (names ?? []).filter((n) => !inv.agents.some((a) => a.name === n));
    if (unknown.length) throw new FactoryError(`unknown agent${unknown.length === 1 ? '' : 's'}: ${unknown.join(', ')} (not in ${inv.file})`, { code: 'E_AGENT_UNKNOWN' });
    const reports = await doctorAgents(agents, this.flags.state, inv.settings);
    const lines: string[] = [];
    for (const r of reports) {
      lines.push(`${r.agent}: ${r.ok ? 'ok' : 'PROBLEMS'}`);
      for (const c of r.checks) lines.push(`  ${c.status.padEnd(4)} ${c.check.padEnd(9)} ${c.detail}${c.fix ? `\n       fix: ${c.fix}` : ''}`);
    }
    this.human(lines.join('\n'));
    if (reports.some((r) => !r.ok)) process.exitCode = 1;
    return { agents: reports };
  }
}
