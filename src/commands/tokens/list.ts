import { FactoryCommand } from '../../cli/base.js';
import { table } from '../../cli/render.js';
import type { TokenView } from '../../client/http-control.js';

/** TokensList lists the control host's tokens (never their secrets). */
export default class TokensList extends FactoryCommand<typeof TokensList> {
  static override summary = "List the control host's tokens: id, scope, project, who made them (never the secrets).";
  static override examples = ['<%= config.bin %> tokens list', '<%= config.bin %> tokens list --json --context prod'];

  protected async execute(): Promise<{ tokens: TokenView[] }> {
    const host = await this.controlTarget();
    const { HttpControl } = await import('../../client/http-control.js');
    const tokens = await new HttpControl(host).tokens();
    this.human(
      tokens.length
        ? table(
            ['ID', 'SCOPE', 'PROJECT', 'CREATED', 'BY', 'DESCRIPTION'],
            tokens.map((t) => [t.id, t.scope, t.project ?? '*', t.createdAt ?? '', t.createdBy ?? '', t.description ?? '']),
          )
        : 'No tokens.',
    );
    return { tokens };
  }
}
