import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { FactoryError } from '../../errors.js';
import { removeAgentFromInventory } from '../../spec/inventory-edit.js';
import { DEFAULT_INVENTORY_PATH } from '../../spec/inventory.js';
import { stateOf } from '../../control/state-handle.js';

/** AgentsRemove deletes an agent from the inventory file; refused while tasks are recorded on it unless --force. */
export default class AgentsRemove extends FactoryCommand<typeof AgentsRemove> {
  static override summary = 'Remove an agent from the inventory file (drain it first: its tasks are refused unless --force).';
  static override examples = ['<%= config.bin %> agents remove h4', '<%= config.bin %> agents remove h4 --force'];
  static override args = { name: Args.string({ description: 'agent name', required: true }) };
  static override flags = {
    force: Flags.boolean({ summary: 'Remove even though tasks are recorded on the agent (they are rescheduled by the next apply).', default: false }),
  };

  protected async execute(): Promise<{ agent: string; inventory: string; tasks: string[] }> {
    const file = this.flags.inventory ?? DEFAULT_INVENTORY_PATH;
    const state = await stateOf(this.flags.state);
    const tasks = state.view().list('tasks')
      .filter((t) => t.agent === this.args.name && (t.state === 'running' || t.state === 'pending' || t.state === 'lost'))
      .map((t) => t.task);
    if (tasks.length && !this.flags.force) {
      throw new FactoryError(`agent ${this.args.name} still runs ${tasks.length} task${tasks.length === 1 ? '' : 's'}: ${tasks.slice(0, 5).join(', ')}`, {
        code: 'E_AGENT_BUSY',
        hint: `drain it first (factory agents drain ${this.args.name}) or pass --force`,
      });
    }
    removeAgentFromInventory(file, this.args.name);
    this.human(`removed agent ${this.args.name} from ${file}`);
    return { agent: this.args.name, inventory: file, tasks };
  }
}
