import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { doctorAgent, type DoctorReport } from '../../control/doctor.js';
import { FactoryError } from '../../errors.js';
import { addAgentToInventory } from '../../spec/inventory-edit.js';
import { DEFAULT_INVENTORY_PATH } from '../../spec/inventory.js';

/** AgentsAdd adds an SSH agent to the inventory file (comments preserved), then checks it unless --no-check. */
export default class AgentsAdd extends FactoryCommand<typeof AgentsAdd> {
  static override summary = 'Add an SSH agent to the inventory file and check that it is reachable.';
  static override examples = [
    '<%= config.bin %> agents add h4 --host 10.0.0.4 --user root --identity-file ~/.ssh/id_ed25519 --idc bj1 --cluster bj1-a --attribute rack=r4',
    '<%= config.bin %> agents add h5 --host bj1-h5 --idc bj1 --cluster bj1-a   # an ~/.ssh/config alias',
  ];
  static override args = { name: Args.string({ description: 'agent name ([a-z0-9][a-z0-9-]*)', required: true }) };
  static override flags = {
    host: Flags.string({ summary: 'Address, DNS name or ~/.ssh/config alias.', required: true }),
    port: Flags.integer({ summary: 'SSH port (default: ~/.ssh/config, else 22).' }),
    user: Flags.string({ summary: 'SSH user.' }),
    'identity-file': Flags.string({ summary: 'Private key file.' }),
    'node-path': Flags.string({ summary: 'Node binary on the agent (default: node on the login PATH).' }),
    'accept-new': Flags.boolean({ summary: 'Record the host key on first use (like StrictHostKeyChecking=accept-new).', default: false }),
    idc: Flags.string({ summary: 'IDC (created when missing).', required: true }),
    cluster: Flags.string({ summary: 'Cluster (created when missing).', required: true }),
    'work-dir': Flags.string({ summary: 'Executor work dir on the agent (default ~/.factory/agents/NAME).' }),
    attribute: Flags.string({ summary: 'Attribute key=value (repeatable).', multiple: true }),
    resource: Flags.string({ summary: 'Declared resource key=value, e.g. cpus=48 mem=192Gi (repeatable).', multiple: true }),
    check: Flags.boolean({ summary: 'Run doctor on the new agent.', default: true, allowNo: true }),
  };

  protected async execute(): Promise<{ agent: string; inventory: string; doctor?: DoctorReport }> {
    const file = this.flags.inventory ?? DEFAULT_INVENTORY_PATH;
    const pairs = (list: string[] | undefined, what: string) =>
      Object.fromEntries(
        (list ?? []).map((kv) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw new FactoryError(`--${what} ${kv}: expected key=value`, { code: 'E_BAD_FLAG' });
          const v = kv.slice(i + 1);
          return [kv.slice(0, i), what === 'resource' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v];
        }),
      );
    const inv = addAgentToInventory(file, {
      name: this.args.name,
      idc: this.flags.idc,
      cluster: this.flags.cluster,
      ssh: {
        host: this.flags.host,
        port: this.flags.port,
        user: this.flags.user,
        identityFile: this.flags['identity-file'],
        nodePath: this.flags['node-path'],
        ...(this.flags['accept-new'] ? { hostKeyPolicy: 'accept-new' as const } : {}),
      },
      workDir: this.flags['work-dir'],
      attributes: pairs(this.flags.attribute, 'attribute') as Record<string, string>,
      resources: pairs(this.flags.resource, 'resource'),
    });
    this.progress(`added agent ${this.args.name} to ${file} (idc ${this.flags.idc}, cluster ${this.flags.cluster})`);
    if (!this.flags.check) return { agent: this.args.name, inventory: file };
    const spec = inv.agents.find((a) => a.name === this.args.name)!;
    const doctor = await doctorAgent(spec, this.flags.state, inv.settings);
    for (const c of doctor.checks) this.human(`  ${c.status.padEnd(4)} ${c.check}: ${c.detail}${c.fix ? ` — fix: ${c.fix}` : ''}`);
    if (!doctor.ok) process.exitCode = 1;
    return { agent: this.args.name, inventory: file, doctor };
  }
}
