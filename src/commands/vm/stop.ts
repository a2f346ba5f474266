import { Flags } from '@oclif/core';
import { VmPowerCommand } from '../../cli/vm-power-command.js';
import type { VmActionOptions } from '../../control/vms.js';

/** VmStop is `factory vm stop TASK`: Shut a VM down gracefully (ACPI power button), forcing it off after --timeout. */
export default class VmStop extends VmPowerCommand<typeof VmStop> {
  static override summary = 'Shut a VM down gracefully (ACPI power button), forcing it off after --timeout.';
  static override examples = ['<%= config.bin %> vm stop render-farm/render/0', '<%= config.bin %> vm stop render/0 --json'];
  static override flags = {
    timeout: Flags.integer({ summary: 'Seconds to wait for the guest before forcing it off (default: max(stopGrace, 30)).' }),
  };
  protected readonly action = 'stop' as const;

  protected override actionOptions(): Partial<VmActionOptions> {
    return this.flags.timeout !== undefined ? { timeoutMs: this.flags.timeout * 1000 } : {};
  }
}
