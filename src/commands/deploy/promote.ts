import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { promoteDeployment } from '../../deploy/actions.js';
import type { DeploymentRecord } from '../../deploy/types.js';

/** DeployPromote is `factory deploy promote ID`: a deployment's canaries are promoted, the rollout of the rest goes on. */
export default class DeployPromote extends FactoryCommand<typeof DeployPromote> {
  static override summary = "Promote a deployment's canaries: the other tasks are rolled out next.";
  static override description = 'A deployment with canary: N starts N new tasks beside the old ones and waits (status waiting-promotion) once they are healthy. A control host (or the next plan apply) carries the rest out.';
  static override examples = ['<%= config.bin %> deploy promote dep-3f2a9c01be'];
  static override args = { id: Args.string({ description: 'the deployment id (plan apply prints it), or a unique prefix of its hex', required: true }) };

  protected async execute(): Promise<{ deployment: DeploymentRecord }> {
    const id = String(this.args.id);
    const deployment = await this.onHost(
      (host) => host.promoteDeployment(id),
      () => promoteDeployment(this.flags.state, id, undefined),
    );
    this.human(`${deployment.id} ${deployment.plan}/${deployment.group}: promoted (${deployment.status})`);
    return { deployment };
  }
}
