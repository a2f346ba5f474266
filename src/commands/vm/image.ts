import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { vmAction, type VmActionView } from '../../control/vms.js';

/** VmImage is `factory vm image TASK NAME`: a shut off VM's disk becomes a new base image NAME in its agent's store. */
export default class VmImage extends FactoryCommand<typeof VmImage> {
  static override summary = "Make a new base image NAME from a shut off VM's disk (in its agent's image store).";
  static override description =
    "The VM's qcow2 overlay and its backing image are flattened (qemu-img convert) into a new content-addressed image, " +
    "which keeps the parent's kernel, initrd and cmdline. The VM reports power 'imaging' meanwhile. Plans use it as `image: NAME`.";
  static override examples = ['<%= config.bin %> vm stop lab/web/0 && <%= config.bin %> vm image lab/web/0 web-golden'];
  static override args = {
    task: Args.string({ description: 'VM task id plan/group/index (a unique suffix is enough)', required: true }),
    name: Args.string({ description: 'name of the new image ([a-z0-9][a-z0-9._-]*)', required: true }),
  };
  static override flags = {};

  protected async execute(): Promise<VmActionView> {
    const r = await vmAction({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, task: this.args.task, action: 'image', imageName: this.args.name });
    this.human(`${r.task} on ${r.agent}: image ${r.image?.name} (${r.image?.id.slice(0, 12)}); VM ${r.power}`);
    return r;
  }
}
