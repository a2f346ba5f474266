import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { Progress } from '../../cli/progress.js';
import { renderApply } from '../../cli/render.js';
import { destroyPlans, type ApplyResult } from '../../control/plan.js';

/** PlanDestroy stops every task of the plans, removes their files on the agents and forgets them. */
export default class PlanDestroy extends FactoryCommand<typeof PlanDestroy> {
  static override summary = 'Stop every task of the plans and leave nothing behind.';
  static override examples = ['<%= config.bin %> plan destroy examples/quickstart.yaml'];
  static override strict = false;
  static override args = { plan: Args.string({ description: 'plan files or folders of plans', required: true }) };

  protected async execute(): Promise<ApplyResult> {
    const progress = new Progress(false);
    progress.start(`destroying ${this.positionals.join(' ')}`);
    let result: ApplyResult;
    try {
      result = await destroyPlans({
        planPaths: this.positionals,
        stateDir: this.flags.state,
        inventoryPath: this.flags.inventory,
        progress: (l) => progress.step(l),
      });
    } catch (err) {
      progress.fail('destroy failed');
      throw err;
    }
    if (result.ok) progress.stop('destroy done');
    else progress.fail('destroy finished with errors');
    this.human(renderApply(result, 'destroy'));
    if (!result.ok) process.exitCode = 1;
    return result;
  }
}
