import { JobSuspendCommand } from '../../cli/job-suspend-command.js';

/** JobsResume is `factory jobs resume JOB`: a suspended job's next slot runs again. */
export default class JobsResume extends JobSuspendCommand<typeof JobsResume> {
  static override summary = 'Resume a suspended job: its next slot runs.';
  static override examples = ['<%= config.bin %> jobs resume nightly'];
  protected readonly suspend = false;
}
