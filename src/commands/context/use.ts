import { Args } from '@oclif/core';
import { FactoryCommand } from '../../cli/base.js';
import { configPath, readConfig, writeConfig } from '../../client/config.js';
import { FactoryError } from '../../errors.js';

/** ContextUse makes a context the current one. */
export default class ContextUse extends FactoryCommand<typeof ContextUse> {
  static override summary = 'Make a context the current one: commands that use a control host go there.';
  static override examples = ['<%= config.bin %> context use prod'];
  static override args = { name: Args.string({ description: 'context name', required: true }) };

  protected async execute(): Promise<{ current: string }> {
    const file = configPath();
    const cfg = readConfig(file);
    const name = this.args.name;
    if (!cfg.contexts[name]) {
      const known = Object.keys(cfg.contexts);
      throw new FactoryError(`no context ${JSON.stringify(name)} in ${file}`, {
        code: 'E_CONTEXT_UNKNOWN',
        hint: known.length ? `known: ${known.sort().join(', ')}` : 'add one with `factory context set NAME --control URL`',
      });
    }
    cfg.current = name;
    writeConfig(cfg, file);
    this.human(`Current context: ${name}`);
    return { current: name };
  }
}
