import { JobSuspendCommand } from '../../cli/job-suspend-command.js';

/** JobsSuspend is `factory jobs suspend JOB`: its slots are skipped (and recorded so) until it is resumed. */
export default class JobsSuspend extends JobSuspendCommand<typeof JobsSuspend> {
  static override summary = 'Suspend a job: its slots are skipped until it is resumed.';
  static override examples = ['<%= config.bin %> jobs suspend nightly'];
  protected readonly suspend = true;
}
