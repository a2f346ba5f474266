/**
 * FactoryCommand is the one base class of every command: global flags, `--json` output as one
 * document on stdout, and one catch that turns errors into a message and an exit code.
 */
import { Command, Flags, Interfaces } from '@oclif/core';
import fs from 'node:fs';
import { FactoryError } from '../errors.js';
import { printError, printHuman, printJson } from './print.js';
import { controlSocketPath } from '../control/host-protocol.js';
// types only: the client (node:http, node:tls, yaml) loads when a command asks for a control host
import type { ApiClient } from '../client/http.js';
import type { ContextConfig } from '../client/config.js';
import type { HttpControl } from '../client/http-control.js';

/** HostTarget is where a command's control operation runs: a named remote host, or the local state's host. */
export interface HostTarget {
  control: HttpControl;
  /** local is true for the host on this state's socket (unix:<state>/control.sock), false for a named remote. */
  local: boolean;
}

/** FactoryFlags are the flags of a command class, global ones included. */
export type FactoryFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof FactoryCommand)['baseFlags'] & T['flags']>;
/** FactoryArgs are the positional arguments of a command class. */
export type FactoryArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** FactoryCommand is the base class: subclasses implement `execute()` and return a JSON-able result. */
export abstract class FactoryCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    state: Flags.string({
      summary: 'State directory.',
      env: 'FACTORY_STATE',
      default: './.factory',
      helpGroup: 'GLOBAL',
    }),
    inventory: Flags.string({
      summary: 'Inventory file (default ./inventory.yaml, else this machine as agent `local`).',
      env: 'FACTORY_INVENTORY',
      helpGroup: 'GLOBAL',
    }),
    json: Flags.boolean({
      summary: 'Print one JSON document on stdout; progress and logs go to stderr.',
      default: false,
      helpGroup: 'GLOBAL',
    }),
    debug: Flags.boolean({ summary: 'Show stack traces of errors.', default: false, helpGroup: 'GLOBAL' }),
    control: Flags.string({
      summary: 'Control host URL(s), tried in turn: https://HOST:PORT or unix:/path/control.sock, comma-separated.',
      env: 'FACTORY_CONTROL_URL',
      helpGroup: 'REMOTE',
    }),
    context: Flags.string({ summary: 'Use this context of the client config (`factory context list`).', helpGroup: 'REMOTE' }),
    'token-file': Flags.string({
      summary: 'File holding the bearer token for the control host (else FACTORY_TOKEN, else the context).',
      env: 'FACTORY_TOKEN_FILE',
      helpGroup: 'REMOTE',
    }),
    timeout: Flags.custom<number>({
      summary: 'Seconds to wait for the control host on each call (default 30).',
      helpGroup: 'REMOTE',
      parse: async (s) => {
        const n = Number(s);
        if (!Number.isFinite(n) || n <= 0) throw new Error(`--timeout wants a positive number of seconds, not ${JSON.stringify(s)}`);
        return n;
      },
    })(),
    fingerprint: Flags.string({ summary: "Trust the control host's certificate by its SHA-256 fingerprint (pin).", helpGroup: 'REMOTE' }),
    ca: Flags.string({ summary: 'Trust control hosts whose certificate this CA file (PEM) signed.', helpGroup: 'REMOTE' }),
  };

  protected flags!: FactoryFlags<T>;
  protected args!: FactoryArgs<T>;
  /** positionals are all positional arguments, for commands that take a variable number. */
  protected positionals: string[] = [];

  /** init parses flags and arguments before run. */
  public override async init(): Promise<void> {
    await super.init();
    const { args, argv, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof FactoryCommand).baseFlags,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as FactoryFlags<T>;
    this.args = args as FactoryArgs<T>;
    this.positionals = argv.map(String);
  }

  /**
   * remoteTarget is the ApiClient of the control host this command names — by --control (or
   * FACTORY_CONTROL_URL), by --context, or by the config's current context — and undefined when
   * none is named: the command then works on the local state directory.
   */
  protected async remoteTarget(): Promise<ApiClient | undefined> {
    const { configPath, readConfig, splitUrls } = await import('../client/config.js');
    const f = this.flags as Record<string, unknown>;
    const urls = splitUrls(f.control as string | undefined);
    const contextName = f.context as string | undefined;
    let ctx: ContextConfig | undefined;
    if (contextName !== undefined || urls.length === 0) {
      const file = configPath();
      const cfg = readConfig(file);
      const name = contextName ?? cfg.current;
      if (name !== undefined) {
        ctx = cfg.contexts[name];
        if (!ctx) {
          throw new FactoryError(`no context ${JSON.stringify(name)} in ${file}`, {
            code: 'E_CONTEXT_UNKNOWN',
            hint: contextName ? 'list them with `factory context list`' : 'pick another with `factory context use NAME`',
          });
        }
      }
    }
    const endpoints = urls.length ? urls : (ctx?.control ?? []);
    if (!endpoints.length) return undefined;
    return await this.clientFor(endpoints, ctx);
  }

  /**
   * controlTarget is remoteTarget, else the control host of the local state directory when its
   * socket exists; a FactoryError says how to name one when there is neither.
   */
  protected async controlTarget(): Promise<ApiClient> {
    const remote = await this.remoteTarget();
    if (remote) return remote;
    const sock = controlSocketPath(this.flags.state);
    if (fs.existsSync(sock)) return await this.clientFor([`unix:${sock}`], undefined);
    throw new FactoryError(`${this.id ?? 'this command'} needs a control host, and none is named (no --control, no context) nor serves ${this.flags.state}`, {
      code: 'E_NO_CONTROL',
      hint: 'pass --control https://HOST:PORT, run `factory context set NAME --control URL`, or start `factory control serve` here',
    });
  }

  /**
   * hostTarget chooses where a control operation runs: a remote named by --control,
   * FACTORY_CONTROL_URL or a context; else a host of this user on `<state>/control.sock` (not with
   * FACTORY_CONTROL=off); else undefined: the command runs the operation itself. `alone` says why
   * this invocation needs the local state (options the API does not take): then a local host is
   * passed over and a named remote is an error.
   */
  protected async hostTarget(opts: { alone?: string } = {}): Promise<HostTarget | undefined> {
    const remote = await this.remoteTarget();
    const { HttpControl } = remote || (process.env.FACTORY_CONTROL !== 'off' && !opts.alone) ? await import('../client/http-control.js') : { HttpControl: undefined };
    if (remote) {
      if (opts.alone) throw new FactoryError(`${opts.alone} is not possible through a control host (${remote.current})`, { code: 'E_USAGE', hint: 'run the command on the control host\'s machine, without --control' });
      return { control: new HttpControl!(remote), local: false };
    }
    if (!HttpControl) return undefined;
    const sock = controlSocketPath(this.flags.state);
    try {
      const st = fs.statSync(sock);
      // only a host of our own user: another user's socket could answer anything
      if (!st.isSocket() || st.uid !== process.getuid?.()) return undefined;
    } catch {
      return undefined;
    }
    return { control: new HttpControl(await this.clientFor([`unix:${sock}`], undefined)), local: true };
  }

  /**
   * onHost runs a control operation where hostTarget says: `remote` on a host, else `alone` here. A
   * local socket nobody answers on (left by a host that was killed) is not trusted: the command
   * runs alone, as nothing was sent.
   */
  protected async onHost<R>(remote: (c: HttpControl) => Promise<R>, alone: () => Promise<R>, opts: { alone?: string; target?: HostTarget | null } = {}): Promise<R> {
    const t = opts.target === null ? undefined : (opts.target ?? (await this.hostTarget(opts)));
    if (!t) return alone();
    if (!t.local) return remote(t.control);
    try {
      return await remote(t.control);
    } catch (err) {
      if (err instanceof FactoryError && err.code === 'E_CONTROL_UNREACHABLE') return alone();
      throw err;
    }
  }

  /** clientFor builds an ApiClient for endpoints with the trust and token of the flags over those of ctx. */
  private async clientFor(endpoints: string[], ctx: ContextConfig | undefined): Promise<ApiClient> {
    const { ApiClient, DEFAULT_TIMEOUT_MS } = await import('../client/http.js');
    const { expandHome, splitUrls } = await import('../client/config.js');
    const f = this.flags as Record<string, unknown>;
    const caFile = (f.ca as string | undefined) ?? (ctx?.ca ? expandHome(ctx.ca) : undefined);
    const fingerprint = (f.fingerprint as string | undefined) ?? ctx?.fingerprint;
    // a command may have its own --timeout (vm stop: the guest's grace): then calls get the default
    const ownTimeout = Boolean((this.ctor as typeof Command).flags?.timeout);
    const timeoutS = ownTimeout ? undefined : (f.timeout as number | undefined);
    return new ApiClient({
      endpoints,
      token: this.bearerToken(ctx, expandHome),
      timeoutMs: timeoutS !== undefined ? Math.round(timeoutS * 1000) : DEFAULT_TIMEOUT_MS,
      ca: caFile ? readFileFlag(caFile, '--ca') : undefined,
      fingerprints: fingerprint ? splitUrls(fingerprint) : undefined,
      userAgent: `factory/${this.config?.version ?? '0'}`,
    });
  }

  /** bearerToken (not `token`: oclif sets `this.token` on a command while it parses arguments) is --token-file (or FACTORY_TOKEN_FILE), else FACTORY_TOKEN, else the context's token file. */
  private bearerToken(ctx: ContextConfig | undefined, expandHome: (p: string) => string): string | undefined {
    const file = (this.flags as Record<string, unknown>)['token-file'] as string | undefined;
    if (file) return readFileFlag(file, '--token-file').trim();
    if (process.env.FACTORY_TOKEN) return process.env.FACTORY_TOKEN.trim();
    if (ctx?.tokenFile) return readFileFlag(expandHome(ctx.tokenFile), 'the context\'s tokenFile').trim();
    return undefined;
  }

  /** execute does the command's work and returns its result (printed as JSON with --json). */
  protected abstract execute(): Promise<unknown>;

  /** run executes the command and prints its JSON result when --json is set. */
  public async run(): Promise<unknown> {
    const result = await this.execute();
    if (this.flags.json) printJson(result);
    return result;
  }

  /** human prints text for people on stdout unless --json is set (then it goes nowhere). */
  protected human(text: string): void {
    if (!this.flags?.json) printHuman(text);
  }

  /** progress prints a progress line on stderr. */
  protected progress(text: string): void {
    process.stderr.write(text + '\n');
  }

  /** catch maps every error to a one-line message on stderr and a non-zero exit; no stack unless --debug. */
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    const debug = Boolean(this.flags?.debug) || Boolean(process.env.DEBUG) || process.argv.includes('--debug');
    // oclif's own exits (this.exit) and parse errors carry oclif.exit
    if (!(err instanceof FactoryError) && err?.oclif?.exit !== undefined && err.message.startsWith('EEXIT')) {
      process.exitCode = err.oclif.exit;
      return;
    }
    // flags may not be parsed yet (a usage error): --json on the command line still asks for JSON
    const json = Boolean(this.flags?.json) || process.argv.slice(2).includes('--json');
    process.exitCode = printError(err, { debug, json, parseError: !(err instanceof FactoryError) && err?.oclif?.exit !== undefined });
  }
}

/** readFileFlag reads a file a flag names; a failure names the flag. */
function readFileFlag(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FactoryError(`cannot read ${file} (${what}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { code: 'E_USAGE' });
  }
}
