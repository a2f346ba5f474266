import { VmPowerCommand } from '../../cli/vm-power-command.js';

/** VmStart is `factory vm start TASK`: Power on a VM (or resume a paused one) through its agent. */
export default class VmStart extends VmPowerCommand<typeof VmStart> {
  static override summary = 'Power on a VM (or resume a paused one) through its agent.';
  static override examples = ['<%= config.bin %> vm start render-farm/render/0', '<%= config.bin %> vm start render/0 --json'];
  protected readonly action = 'start' as const;
}
