import { DeployOperatorCommand } from '../../cli/deploy-operator-command.js';

/** DeployPause is `factory deploy pause ID`: no new batch starts; the tasks in flight finish their health gate. */
export default class DeployPause extends DeployOperatorCommand<typeof DeployPause> {
  static override summary = 'Pause a deployment: no new batch starts until it is resumed.';
  static override description = 'The tasks already started on the new spec finish their health gate; the progress deadline does not run while paused. Exit 1 (E_DEPLOYMENT_STATE) when it is paused already, E_DEPLOYMENT_FINISHED when it has ended.';
  static override examples = ['<%= config.bin %> deploy pause dep-3f2a9c01be'];
  protected readonly action = 'pause';
}
