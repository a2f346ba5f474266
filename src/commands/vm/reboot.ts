import { VmPowerCommand } from '../../cli/vm-power-command.js';

/** VmReboot is `factory vm reboot TASK`: Reboot a running VM (ACPI: the guest shuts down and libvirt starts it again). */
export default class VmReboot extends VmPowerCommand<typeof VmReboot> {
  static override summary = 'Reboot a running VM (ACPI: the guest shuts down and libvirt starts it again).';
  static override examples = ['<%= config.bin %> vm reboot render-farm/render/0', '<%= config.bin %> vm reboot render/0 --json'];
  protected readonly action = 'reboot' as const;
}
