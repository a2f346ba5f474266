import { FactoryCommand } from '../../cli/base.js';
import { table } from '../../cli/render.js';
import { configPath, readConfig, type ContextConfig } from '../../client/config.js';

/** ContextView is one context as listed. */
export type ContextView = ContextConfig & { name: string; current: boolean };

/** ContextList lists the contexts of the client config. */
export default class ContextList extends FactoryCommand<typeof ContextList> {
  static override summary = 'List the contexts (named control hosts); * marks the current one.';
  static override examples = ['<%= config.bin %> context list', '<%= config.bin %> context list --json'];

  protected async execute(): Promise<{ current: string | null; contexts: ContextView[]; file: string }> {
    const file = configPath();
    const cfg = readConfig(file);
    const contexts = Object.entries(cfg.contexts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, c]) => ({ name, current: cfg.current === name, ...c }));
    if (!contexts.length) this.human(`No contexts (${file}). Add one with \`factory context set NAME --control URL\`.`);
    else {
      this.human(
        table(
          ['', 'NAME', 'CONTROL', 'TOKEN FILE', 'TRUST'],
          contexts.map((c) => [c.current ? '*' : '', c.name, c.control.join(','), c.tokenFile ?? '', c.fingerprint ? `pin ${c.fingerprint.slice(0, 23)}…` : c.ca ? `ca ${c.ca}` : 'system CAs']),
        ),
      );
    }
    return { current: cfg.current ?? null, contexts, file };
  }
}
