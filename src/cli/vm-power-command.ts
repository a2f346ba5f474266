/**
 * VmPowerCommand is the shared shape of `factory vm start | stop | reboot | force-off TASK`: one task
 * argument, one power action run on the VM's agent, one line of output.
 */
import { Args, type Command } from '@oclif/core';
import { FactoryCommand } from './base.js';
import { vmAction, type VmActionOptions, type VmActionView } from '../control/vms.js';

/** VmPowerCommand runs `action` on the VM named by the task argument; subclasses set summary, examples and action. */
export abstract class VmPowerCommand<T extends typeof Command> extends FactoryCommand<T> {
  static override args = { task: Args.string({ description: 'VM task id plan/group/index (a unique suffix is enough)', required: true }) };

  /** action is the power action this command runs. */
  protected abstract readonly action: VmActionOptions['action'];

  /** actionOptions adds command-specific options (e.g. stop's timeout). */
  protected actionOptions(): Partial<VmActionOptions> {
    return {};
  }

  protected async execute(): Promise<VmActionView> {
    const task = String((this.args as { task: string }).task);
    const extra = this.actionOptions();
    const action = this.action;
    const powered = action === 'start' || action === 'stop' || action === 'reboot' || action === 'force-off';
    const r = await this.onHost(
      (host) => host.vmAction(task, powered ? action : 'start'),
      () => vmAction({ stateDir: this.flags.state, inventoryPath: this.flags.inventory, task, action: this.action, ...extra }),
      // the API takes no per-call options (vm stop --timeout): those need the state here
      { alone: !powered ? `vm ${action}` : Object.keys(extra).length ? `vm ${action} --timeout` : undefined },
    );
    this.human(`${r.task} on ${r.agent}: ${r.power}`);
    return r;
  }
}
