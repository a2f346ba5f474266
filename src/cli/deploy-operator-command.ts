/**
 * DeployOperatorCommand is the shared shape of `factory deploy pause | resume | abort | revert ID`:
 * one deployment argument, the action taken on the control host (or on the state when none serves
 * it, as `deploy promote`), one line of output.
 */
import os from 'node:os';
import { Args, type Command } from '@oclif/core';
import { FactoryCommand } from './base.js';
import { operateDeployment } from '../deploy/actions.js';
import type { OperatorAction } from '../deploy/operator.js';
import type { DeploymentRecord } from '../deploy/types.js';

/** localCaller names the user of a command run without a control host in events (`local:<user>`). */
export function localCaller(): string {
  try {
    return `local:${os.userInfo().username}`;
  } catch {
    return `local:${process.getuid?.() ?? 'unknown'}`;
  }
}

/** DeployOperatorCommand takes `action` on the deployment named by the argument; subclasses set summary, examples and action. */
export abstract class DeployOperatorCommand<T extends typeof Command> extends FactoryCommand<T> {
  static override args = { id: Args.string({ description: 'the deployment id (plan apply prints it), or a unique prefix of its hex', required: true }) };

  /** action is what this command does to the deployment. */
  protected abstract readonly action: OperatorAction;

  protected async execute(): Promise<{ deployment: DeploymentRecord }> {
    const id = String((this.args as { id: string }).id);
    const deployment = await this.onHost(
      (host) => host.operateDeployment(id, this.action),
      () => operateDeployment(this.flags.state, id, this.action, localCaller()),
    );
    this.human(`${deployment.id} ${deployment.plan}/${deployment.group}: ${deployment.status}${deployment.revertedBy ? `; ${deployment.revertedBy} rolls it back to ${deployment.fromHash}` : ''}`);
    return { deployment };
  }
}
