import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { Progress } from '../../cli/progress.js';
import { renderDiff } from '../../cli/render.js';
import { diffExitCode, EXIT_CODES_HELP } from '../../cli/exit-codes.js';
import { diffPlans, type DiffResult } from '../../control/plan.js';

/** PlanDiff shows what `plan apply` would do and where each task would land; it changes nothing. */
export default class PlanDiff extends FactoryCommand<typeof PlanDiff> {
  static override summary = 'Show what apply would do and where each task lands; changes nothing.';
  static override description =
    `Runs the real scheduler against a snapshot. With --offline it uses the inventory's declared capacity and the state file, and contacts no agent (what-if in CI). ${EXIT_CODES_HELP}`;
  static override examples = [
    '<%= config.bin %> plan diff examples/quickstart.yaml',
    '<%= config.bin %> plan diff --offline --json --inventory inventory.yaml plans/',
    '<%= config.bin %> plan diff --detailed-exitcode plans/  # 0 no changes, 2 changes, 3 some task unplaced, 1 error',
  ];
  static override strict = false;
  static override args = { plan: Args.string({ description: 'plan files or folders of plans', required: true }) };
  static override flags = {
    offline: Flags.boolean({ summary: 'Use declared capacity and the state file; contact no agent.', default: false }),
    'detailed-exitcode': Flags.boolean({ summary: 'Exit 0 when there are no changes, 2 when there are, 3 when some task cannot be placed, 1 on error.', default: false }),
    seed: Flags.integer({ summary: 'Seed for tie-breaking (the same seed gives the same plan).', default: 1 }),
  };

  protected async execute(): Promise<DiffResult> {
    const progress = new Progress(this.flags.json || this.flags.offline);
    progress.start('computing plan');
    let result: DiffResult;
    try {
      result = await this.onHost(
        (host) => host.diff({ paths: this.positionals, inventory: this.flags.inventory, offline: this.flags.offline, seed: this.flags.seed, progress: (l) => progress.step(l) }),
        () =>
          diffPlans({
            planPaths: this.positionals,
            stateDir: this.flags.state,
            inventoryPath: this.flags.inventory,
            offline: this.flags.offline,
            seed: this.flags.seed,
            progress: (l) => progress.step(l),
          }),
      );
    } finally {
      progress.stop();
    }
    if (!this.flags.json) this.human(renderDiff(result)); // rendering 100k rows for nobody costs ~0.2 s
    if (this.flags['detailed-exitcode']) process.exitCode = diffExitCode(result);
    return result;
  }
}
