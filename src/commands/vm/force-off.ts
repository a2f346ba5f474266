import { VmPowerCommand } from '../../cli/vm-power-command.js';

/** VmForceOff is `factory vm force-off TASK`: Force a VM off at once (like pulling the plug); its disk is kept. */
export default class VmForceOff extends VmPowerCommand<typeof VmForceOff> {
  static override summary = 'Force a VM off at once (like pulling the plug); its disk is kept.';
  static override examples = ['<%= config.bin %> vm force-off render-farm/render/0', '<%= config.bin %> vm force-off render/0 --json'];
  protected readonly action = 'force-off' as const;
}
