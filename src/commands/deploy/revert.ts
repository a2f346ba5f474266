import { DeployOperatorCommand } from '../../cli/deploy-operator-command.js';

/** DeployRevert is `factory deploy revert ID`: the group is rolled back to the spec the deployment replaced (status reverted). */
export default class DeployRevert extends DeployOperatorCommand<typeof DeployRevert> {
  static override summary = 'Revert a deployment: its group is rolled back to the previous spec.';
  static override description = 'As autoRevert does: the previous spec is recorded as the plan\'s again and a deployment of its own (revertOf, printed) rolls the tasks on the new spec back, with the same policy. A control host carries it out. Exit 1 (E_DEPLOYMENT_NO_PREVIOUS) when there is no previous spec.';
  static override examples = ['<%= config.bin %> deploy revert dep-3f2a9c01be'];
  protected readonly action = 'revert';
}
