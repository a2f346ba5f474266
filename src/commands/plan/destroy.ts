import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { runWithProgress } from '../../cli/progress.js';
import { renderApply } from '../../cli/render.js';
import { destroyPlans, type ApplyResult } from '../../control/plan.js';

/** PlanDestroy stops every task of the plans, removes their files on the agents and forgets them. */
export default class PlanDestroy extends FactoryCommand<typeof PlanDestroy> {
  static override summary = 'Stop every task of the plans and leave nothing behind.';
  static override examples = ['<%= config.bin %> plan destroy examples/quickstart.yaml'];
  static override strict = false;
  static override args = { plan: Args.string({ description: 'plan files or folders of plans', required: true }) };

  protected async execute(): Promise<ApplyResult> {
    const result = await runWithProgress('destroy', `destroying ${this.positionals.join(' ')}`, (step) =>
      this.onHost(
        (host) => host.destroy({ paths: this.positionals, inventory: this.flags.inventory, progress: step }),
        () =>
          destroyPlans({
            planPaths: this.positionals,
            stateDir: this.flags.state,
            inventoryPath: this.flags.inventory,
            progress: step,
          }),
      ),
    );
    this.human(renderApply(result, 'destroy'));
    if (!result.ok) process.exitCode = 1;
    return result;
  }
}
