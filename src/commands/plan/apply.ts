import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { runWithProgress } from '../../cli/progress.js';
import { renderApply } from '../../cli/render.js';
import { applyExitCode, EXIT_CODES_HELP } from '../../cli/exit-codes.js';
import { applyPlans, type ApplyResult } from '../../control/plan.js';

/** PlanApply converges the agents to the plans; a second apply of the same plans changes nothing. */
export default class PlanApply extends FactoryCommand<typeof PlanApply> {
  static override summary = 'Converge: start, restart, update and stop tasks so the agents match the plans.';
  static override description =
    `Idempotent: a second apply of the same plans reports no changes. Tasks keep running after factory exits. Progress goes to stderr. ${EXIT_CODES_HELP}`;
  static override examples = ['<%= config.bin %> plan apply examples/quickstart.yaml', '<%= config.bin %> plan apply --json plans/'];
  static override strict = false;
  static override args = { plan: Args.string({ description: 'plan files or folders of plans', required: true }) };
  static override flags = {
    seed: Flags.integer({ summary: 'Seed for tie-breaking (the same seed gives the same plan).', default: 1 }),
  };

  protected async execute(): Promise<ApplyResult> {
    let alone = false;
    const result = await runWithProgress('apply', `applying ${this.positionals.join(' ')}`, (step) =>
      this.onHost(
        (host) => host.apply({ paths: this.positionals, inventory: this.flags.inventory, seed: this.flags.seed, progress: step }),
        () => {
          alone = true;
          return applyPlans({
            planPaths: this.positionals,
            stateDir: this.flags.state,
            inventoryPath: this.flags.inventory,
            seed: this.flags.seed,
            progress: step,
          });
        },
      ),
    );
    this.human(renderApply(result, 'apply'));
    if (alone && result.jobs && result.jobs.created.length + result.jobs.updated.length > 0) {
      // a one-shot command schedules nothing: say where the jobs will run
      process.stderr.write(`note: jobs are recorded in the state and run only while a control host serves it (none does now): factory control serve --state ${this.flags.state}\n`);
    }
    process.exitCode = applyExitCode(result);
    return result;
  }
}
