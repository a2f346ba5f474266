import { DeployOperatorCommand } from '../../cli/deploy-operator-command.js';

/** DeployResume is `factory deploy resume ID`: a paused deployment goes on, its progress deadline counted from now. */
export default class DeployResume extends DeployOperatorCommand<typeof DeployResume> {
  static override summary = 'Resume a paused deployment: the next batches start.';
  static override description = 'Its progress deadline counts from the resume. Exit 1 (E_DEPLOYMENT_STATE) when it is not paused.';
  static override examples = ['<%= config.bin %> deploy resume dep-3f2a9c01be'];
  protected readonly action = 'resume';
}
