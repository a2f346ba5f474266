import { Args, Flags } from '@oclif/core';
import path from 'node:path';
import { FactoryCommand } from '../../cli/base.js';
import { checkContext, configPath, readConfig, splitUrls, writeConfig, type ContextConfig } from '../../client/config.js';
import { FactoryError } from '../../errors.js';

/** ContextSet adds or replaces a named control host in the client config. */
export default class ContextSet extends FactoryCommand<typeof ContextSet> {
  static override summary = 'Add or change a context: a named control host (URLs, token file, trust).';
  static override examples = [
    '<%= config.bin %> context set prod --control https://10.0.0.1:7443,https://10.0.0.2:7443 --token-file ~/.config/factory/prod.token --fingerprint AB:CD:…',
    '<%= config.bin %> context set lab --control https://lab:7443 --ca lab-ca.pem',
  ];
  static override args = { name: Args.string({ description: 'context name', required: true }) };
  // the global flags of the same names, without their environment variables: a context records
  // what was typed, not what FACTORY_CONTROL_URL or FACTORY_TOKEN_FILE happen to hold
  static override flags = {
    control: Flags.string({ summary: 'Control host URL(s), comma-separated: https://HOST:PORT or unix:/path/control.sock.' }),
    'token-file': Flags.string({ summary: 'File holding the bearer token (the file is named in the config, not copied).' }),
    ca: Flags.string({ summary: 'CA file (PEM) that signed the control hosts\' certificates.' }),
    fingerprint: Flags.string({ summary: "SHA-256 fingerprint(s) of the control hosts' certificates, comma-separated (pins)." }),
  };

  protected async execute(): Promise<{ name: string; context: ContextConfig; current: boolean; file: string }> {
    const file = configPath();
    const cfg = readConfig(file);
    const name = this.args.name;
    const old = cfg.contexts[name];
    const control = splitUrls(this.flags.control);
    if (!control.length && !old) throw new FactoryError(`context ${name}: --control URL[,URL…] is required for a new context`, { code: 'E_USAGE' });
    const tokenFile = this.flags['token-file'] !== undefined ? filePath(this.flags['token-file']) : old?.tokenFile;
    const ca = this.flags.ca !== undefined ? filePath(this.flags.ca) : old?.ca;
    const fingerprint = this.flags.fingerprint ?? old?.fingerprint;
    const merged: ContextConfig = {
      control: control.length ? control : old!.control,
      ...(tokenFile ? { tokenFile } : {}),
      ...(ca ? { ca } : {}),
      ...(fingerprint ? { fingerprint } : {}),
    };
    const ctx = checkContext(name, merged);
    cfg.contexts[name] = ctx;
    // the first context becomes the current one, as kubectl's first does not: one fewer step for the common case
    if (!cfg.current) cfg.current = name;
    writeConfig(cfg, file);
    this.human(`Context ${name} ${old ? 'changed' : 'added'}${cfg.current === name ? ' (current)' : ''}: ${ctx.control.join(', ')}`);
    return { name, context: ctx, current: cfg.current === name, file };
  }
}

/** filePath makes a file flag absolute (the config is read from anywhere); `~/…` and '' stay as typed. */
function filePath(p: string): string {
  return p === '' || p.startsWith('~') ? p : path.resolve(p);
}
