import { Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { renderDeployments } from '../../cli/render-deployments.js';
import { listDeployments } from '../../deploy/actions.js';
import type { DeploymentRecord } from '../../deploy/types.js';
import { stateOf } from '../../control/state-handle.js';

/** DeployList is `factory deploy list`: the deployments kept, newest first. */
export default class DeployList extends FactoryCommand<typeof DeployList> {
  static override summary = 'List deployments, newest first: group, status, old/new/healthy tasks, age.';
  static override description = 'The last 5 ended deployments of each group are kept, with every one in progress.';
  static override examples = ['<%= config.bin %> deploy list', '<%= config.bin %> deploy list --plan web --json'];
  static override flags = { plan: Flags.string({ description: 'only the deployments of this plan' }) };

  protected async execute(): Promise<{ deployments: DeploymentRecord[] }> {
    const plan = this.flags.plan;
    const deployments = await this.onHost(
      (host) => host.deployments(plan),
      async () => listDeployments((await stateOf(this.flags.state)).view(), plan ? { plan } : {}),
    );
    this.human(renderDeployments(deployments, Date.now()));
    return { deployments };
  }
}
