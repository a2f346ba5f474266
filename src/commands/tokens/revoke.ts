import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';

/** TokensRevoke revokes a token on the control host: requests with it are refused from now on. */
export default class TokensRevoke extends FactoryCommand<typeof TokensRevoke> {
  static override summary = 'Revoke a token (by its id fct_<12 hex>): the host refuses it from now on.';
  static override examples = ['<%= config.bin %> tokens revoke fct_0123456789ab'];
  static override args = { id: Args.string({ description: 'token id (fct_<12 hex>, as `tokens list` shows it)', required: true }) };

  protected async execute(): Promise<{ revoked: string }> {
    const host = await this.controlTarget();
    const { HttpControl } = await import('../../client/http-control.js');
    const r = await new HttpControl(host).revokeToken(this.args.id);
    this.human(`Revoked ${r.revoked}.`);
    return r;
  }
}
