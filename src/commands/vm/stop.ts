import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { vmAction, type VmActionView } from '../../control/vms.js';

/** VmStop is `factory vm stop TASK`: Shut a VM down gracefully (ACPI power button), forcing it off after --timeout. */
export default class VmStop extends FactoryCommand<typeof VmStop> {
  static override summary = 'Shut a VM down gracefully (ACPI power button), forcing it off after --timeout.';
  static override examples = ['<%= config.bin %> vm stop render-farm/render/0', '<%= config.bin %> vm stop render/0 --json'];
  static override args = { task: Args.string({ description: 'VM task id plan/group/index (a unique suffix is enough)', required: true }) };
  static override flags = {
    timeout: Flags.integer({ summary: 'Seconds to wait for the guest before forcing it off (default: max(stopGrace, 30)).' }),
  };

  protected async execute(): Promise<VmActionView> {
    const r = await vmAction({
      stateDir: this.flags.state,
      inventoryPath: this.flags.inventory,
      task: this.args.task,
      action: 'stop',
      ...(this.flags.timeout !== undefined ? { timeoutMs: this.flags.timeout * 1000 } : {}),
    });
    this.human(`${r.task} on ${r.agent}: ${r.power}`);
    return r;
  }
}
