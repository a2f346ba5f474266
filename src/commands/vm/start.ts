import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { vmAction, type VmActionView } from '../../control/vms.js';

/** VmStart is `factory vm start TASK`: Power on a VM (or resume a paused one) through its agent. */
export default class VmStart extends FactoryCommand<typeof VmStart> {
  static override summary = 'Power on a VM (or resume a paused one) through its agent.';
  static override examples = ['<%= config.bin %> vm start render-farm/render/0', '<%= config.bin %> vm start render/0 --json'];
  static override args = { task: Args.string({ description: 'VM task id plan/group/index (a unique suffix is enough)', required: true }) };
  static override flags = {};

  protected async execute(): Promise<VmActionView> {
    const r = await vmAction({
      stateDir: this.flags.state,
      inventoryPath: this.flags.inventory,
      task: this.args.task,
      action: 'start',
    });
    this.human(`${r.task} on ${r.agent}: ${r.power}`);
    return r;
  }
}
