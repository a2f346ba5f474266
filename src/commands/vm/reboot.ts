import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { vmAction, type VmActionView } from '../../control/vms.js';

/** VmReboot is `factory vm reboot TASK`: Reboot a running VM (ACPI: the guest shuts down and libvirt starts it again). */
export default class VmReboot extends FactoryCommand<typeof VmReboot> {
  static override summary = 'Reboot a running VM (ACPI: the guest shuts down and libvirt starts it again).';
  static override examples = ['<%= config.bin %> vm reboot render-farm/render/0', '<%= config.bin %> vm reboot render/0 --json'];
  static override args = { task: Args.string({ description: 'VM task id plan/group/index (a unique suffix is enough)', required: true }) };
  static override flags = {};

  protected async execute(): Promise<VmActionView> {
    const r = await vmAction({
      stateDir: this.flags.state,
      inventoryPath: this.flags.inventory,
      task: this.args.task,
      action: 'reboot',
    });
    this.human(`${r.task} on ${r.agent}: ${r.power}`);
    return r;
  }
}
