import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { table } from '../../cli/render.js';
import { pushVmImage, type VmImagePushResult } from '../../control/vm-images.js';

/** VmPush is `factory vm push SOURCE --name NAME`: copy a VM base image to the agents' image stores. */
export default class VmPush extends FactoryCommand<typeof VmPush> {
  static override summary = "Copy a VM base image to the agents' image stores (content-addressed, checksummed, skipped where present).";
  static override description =
    'SOURCE is a folder with disk.qcow2 and optionally kernel, initrd and cmdline (direct kernel boot), or a single .qcow2 file. ' +
    'Every file is verified by sha256 on the agent before the image is committed; an agent that already has the same content only gets the name.';
  static override examples = ['<%= config.bin %> vm push ./images/debian --name debian-12', '<%= config.bin %> vm push base.qcow2 --name base --agents h1,h2'];
  static override args = { source: Args.string({ description: 'image folder or .qcow2 file', required: true }) };
  static override flags = {
    name: Flags.string({ summary: 'Name of the image on the agents (what plans give as `image:`).', required: true }),
    agents: Flags.string({ summary: 'Comma-separated agent names (default: every agent of the inventory).' }),
  };

  protected async execute(): Promise<VmImagePushResult> {
    const r = await pushVmImage({
      source: this.args.source,
      name: this.flags.name,
      stateDir: this.flags.state,
      inventoryPath: this.flags.inventory,
      ...(this.flags.agents ? { agents: this.flags.agents.split(',').map((a) => a.trim()).filter(Boolean) } : {}),
      progress: (line) => this.progress(line),
    });
    this.human(table(['AGENT', 'RESULT', 'DETAIL'], r.agents.map((a) => [a.agent, a.action, a.error ?? (a.action === 'pushed' ? `${a.bytes} bytes in ${a.ms} ms` : '')])));
    if (!r.ok) process.exitCode = 1;
    return r;
  }
}
