import { Args, Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { FactoryError } from '../../errors.js';
import type { RunRecord } from '../../jobs/types.js';

/** JobsRun starts a run of a job now, outside its schedule, on the control host. */
export default class JobsRun extends FactoryCommand<typeof JobsRun> {
  static override summary = 'Run a job now, outside its schedule (its concurrency applies unless --force).';
  static override description = 'The control host claims and starts the run (a one-shot command schedules nothing): it needs `factory control serve` on the state, or --control.';
  static override examples = ['<%= config.bin %> jobs run nightly', '<%= config.bin %> jobs run etl/nightly --force'];
  static override args = { job: Args.string({ description: 'job: plan/job, or a job name no other plan uses', required: true }) };
  static override flags = {
    force: Flags.boolean({ summary: 'Start it even when its concurrency (forbid) would skip it.', default: false }),
  };

  protected async execute(): Promise<{ run: RunRecord }> {
    const target = await this.hostTarget();
    if (!target) {
      throw new FactoryError('jobs run on a control host, and none serves this state', {
        code: 'E_NO_CONTROL',
        hint: `start one: factory control serve --state ${this.flags.state} (or name one with --control)`,
      });
    }
    const run = await target.control.runJob(this.args.job, this.flags.force);
    this.human(`${run.id}: ${run.agent ? `started on ${run.agent}` : `waiting: ${run.reason ?? ''}`}`);
    return { run };
  }
}
