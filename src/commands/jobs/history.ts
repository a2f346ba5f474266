import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { renderRuns } from '../../cli/render-jobs.js';
import { findJob, jobRuns } from '../../control/jobs.js';
import { stateOf } from '../../control/state-handle.js';
import type { RunRecord } from '../../jobs/types.js';

/** JobsHistory lists a job's runs: those kept (the history limits) and those going. */
export default class JobsHistory extends FactoryCommand<typeof JobsHistory> {
  static override summary = "List a job's runs, newest first: slot, state, attempts, agent, exit code, why.";
  static override examples = ['<%= config.bin %> jobs history nightly', '<%= config.bin %> jobs history etl/nightly --json'];
  static override args = { job: Args.string({ description: 'job: plan/job, or a job name no other plan uses', required: true }) };

  protected async execute(): Promise<{ job: string; runs: RunRecord[] }> {
    const out = await this.onHost(
      (host) => host.jobRuns(this.args.job),
      async () => {
        const view = (await stateOf(this.flags.state)).view();
        const job = findJob(view, this.args.job);
        return { job: job.id, runs: jobRuns(view, job) };
      },
    );
    this.human(renderRuns(out.job, out.runs));
    return out;
  }
}
