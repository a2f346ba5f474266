import { FactoryCommand } from '../../cli/base.js';
import { renderJobs } from '../../cli/render-jobs.js';
import { jobViews, type JobView } from '../../control/jobs.js';
import { stateOf } from '../../control/state-handle.js';

/** JobsList lists the scheduled jobs: next slot, last run and its result, runs going, counts. */
export default class JobsList extends FactoryCommand<typeof JobsList> {
  static override summary = 'List the scheduled jobs: schedule, next slot, last run and result, suspended.';
  static override description = 'Jobs come from the applied plans (jobs:) and run while a control host serves the state (factory control serve).';
  static override examples = ['<%= config.bin %> jobs list', '<%= config.bin %> jobs list --json'];

  protected async execute(): Promise<{ jobs: JobView[] }> {
    const jobs = await this.onHost(
      (host) => host.jobs(),
      async () => jobViews((await stateOf(this.flags.state)).view()),
    );
    this.human(renderJobs(jobs));
    return { jobs };
  }
}
