import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { renderDeployment } from '../../cli/render-deployments.js';
import { deploymentEvents, findDeployment } from '../../deploy/actions.js';
import type { DeploymentRecord } from '../../deploy/types.js';
import { stateOf } from '../../control/state-handle.js';
import type { EventRecord } from '../../state/backend.js';

/** DeployStatus is `factory deploy status ID`: one deployment in detail, each new task's state, why it failed, its events. */
export default class DeployStatus extends FactoryCommand<typeof DeployStatus> {
  static override summary = "Show a deployment: policy, each new task's state, why it failed, its events.";
  static override examples = ['<%= config.bin %> deploy status dep-3f2a9c01be', '<%= config.bin %> deploy status 3f2a9 --json'];
  static override args = { id: Args.string({ description: 'the deployment id (plan apply prints it), or a unique prefix of its hex', required: true }) };

  protected async execute(): Promise<{ deployment: DeploymentRecord; events: EventRecord[] }> {
    const id = String(this.args.id);
    const r = await this.onHost(
      (host) => host.deploymentDetail(id),
      async () => {
        const state = await stateOf(this.flags.state);
        const deployment = findDeployment(state.view(), id);
        return { deployment, events: deploymentEvents(state, deployment.id) };
      },
    );
    this.human(renderDeployment(r.deployment, r.events, Date.now()));
    return r;
  }
}
