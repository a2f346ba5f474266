import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { vmAction, type VmActionView } from '../../control/vms.js';

/** VmForceOff is `factory vm force-off TASK`: Force a VM off at once (like pulling the plug); its disk is kept. */
export default class VmForceOff extends FactoryCommand<typeof VmForceOff> {
  static override summary = 'Force a VM off at once (like pulling the plug); its disk is kept.';
  static override examples = ['<%= config.bin %> vm force-off render-farm/render/0', '<%= config.bin %> vm force-off render/0 --json'];
  static override args = { task: Args.string({ description: 'VM task id plan/group/index (a unique suffix is enough)', required: true }) };
  static override flags = {};

  protected async execute(): Promise<VmActionView> {
    const r = await vmAction({
      stateDir: this.flags.state,
      inventoryPath: this.flags.inventory,
      task: this.args.task,
      action: 'force-off',
    });
    this.human(`${r.task} on ${r.agent}: ${r.power}`);
    return r;
  }
}
