import { DeployOperatorCommand } from '../../cli/deploy-operator-command.js';

/** DeployAbort is `factory deploy abort ID`: the deployment stops where it stands (status aborted), its tasks stay as they are. */
export default class DeployAbort extends DeployOperatorCommand<typeof DeployAbort> {
  static override summary = 'Abort a deployment where it stands: its tasks stay on the spec they run.';
  static override description = 'The group stays mixed (old and new tasks) until the next plan apply, which starts a new deployment.';
  static override examples = ['<%= config.bin %> deploy abort dep-3f2a9c01be'];
  protected readonly action = 'abort';
}
