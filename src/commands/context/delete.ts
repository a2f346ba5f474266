import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { configPath, readConfig, writeConfig } from '../../client/config.js';
import { FactoryError } from '../../errors.js';

/** ContextDelete removes a context (and unsets current when it was current). */
export default class ContextDelete extends FactoryCommand<typeof ContextDelete> {
  static override summary = 'Remove a context from the client config.';
  static override examples = ['<%= config.bin %> context delete lab'];
  static override args = { name: Args.string({ description: 'context name', required: true }) };

  protected async execute(): Promise<{ deleted: string; current: string | null }> {
    const file = configPath();
    const cfg = readConfig(file);
    const name = this.args.name;
    if (!cfg.contexts[name]) throw new FactoryError(`no context ${JSON.stringify(name)} in ${file}`, { code: 'E_CONTEXT_UNKNOWN', hint: 'list them with `factory context list`' });
    delete cfg.contexts[name];
    if (cfg.current === name) delete cfg.current;
    writeConfig(cfg, file);
    this.human(`Context ${name} deleted${cfg.current ? '' : '; no context is current now'}.`);
    return { deleted: name, current: cfg.current ?? null };
  }
}
