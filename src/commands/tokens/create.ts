import { Flags } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import type { TokenView } from '../../client/http-control.js';

/** TokensCreate makes a bearer token on the control host; its secret is printed once. */
export default class TokensCreate extends FactoryCommand<typeof TokensCreate> {
  static override summary = "Create a bearer token on the control host (the secret is shown once: save it).";
  static override description =
    'read < write < admin. A token with --project sees only that project\'s plans, tasks, logs and events, and cannot write outside it. Needs an admin token (or the host\'s own socket).';
  static override examples = [
    '<%= config.bin %> tokens create --project web --scope write --description "CI of web" > web.token',
    '<%= config.bin %> tokens create --scope read --control https://10.0.0.1:7443 --token-file root.token',
  ];
  static override flags = {
    scope: Flags.string({ summary: 'What the token may do.', options: ['read', 'write', 'admin'], required: true }),
    project: Flags.string({ summary: 'Limit the token to this project.' }),
    description: Flags.string({ summary: 'What the token is for (shown in `tokens list`).' }),
  };

  protected async execute(): Promise<{ token: string; record: TokenView }> {
    const host = await this.controlTarget();
    const { HttpControl } = await import('../../client/http-control.js');
    const made = await new HttpControl(host).createToken({
      scope: this.flags.scope as 'read' | 'write' | 'admin',
      ...(this.flags.project ? { project: this.flags.project } : {}),
      ...(this.flags.description ? { description: this.flags.description } : {}),
    });
    // the secret alone on stdout (`> file` keeps it); what it is goes to stderr
    this.human(made.token);
    if (!this.flags.json) {
      const r = made.record;
      this.progress(`created ${r.id} (${r.scope}${r.project ? `, project ${r.project}` : ''}); the secret above is not shown again`);
    }
    return made;
  }
}
