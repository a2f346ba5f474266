/**
 * JobSuspendCommand is the shared shape of `factory jobs suspend | resume JOB`: one job argument,
 * its suspension set on the control host (or in the state when none serves it), one line of output.
 */
import { Args, type Command } from '@oclif/core';
import { FactoryCommand } from './base.js';
import { setSuspended, type JobView } from '../control/jobs.js';

/** JobSuspendCommand suspends (suspend true) or resumes the job named by the argument. */
export abstract class JobSuspendCommand<T extends typeof Command> extends FactoryCommand<T> {
  static override description = "Recorded on the job; the plan's next apply sets it again only if the plan's own suspend: changed.";
  static override args = { job: Args.string({ description: 'job: plan/job, or a job name no other plan uses', required: true }) };

  /** suspend is what this command sets. */
  protected abstract readonly suspend: boolean;

  protected async execute(): Promise<{ job: JobView }> {
    const name = String((this.args as { job: string }).job);
    const job = await this.onHost(
      (host) => host.suspendJob(name, this.suspend),
      () => setSuspended(this.flags.state, name, this.suspend, undefined),
    );
    this.human(`${job.id} ${job.suspended ? 'suspended' : `resumed${job.next ? `; next slot ${job.next}` : ''}`}`);
    return { job };
  }
}
