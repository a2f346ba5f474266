/**
 * FactoryCommand is the one base class of every command: global flags, `--json` output as one
 * document on stdout, and one catch that turns errors into a message and an exit code.
 */
import { Command, Flags, Interfaces } from '@oclif/core';
import { FactoryError, SpecError } from '../errors.js';

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

  /** execute does the command's work and returns its result (printed as JSON with --json). */
  protected abstract execute(): Promise<unknown>;

  /** run executes the command and prints its JSON result when --json is set. */
  public async run(): Promise<unknown> {
    const result = await this.execute();
    // indented for people at a terminal; compact for pipes (a 100k-task plan is tens of MB)
    if (this.flags.json && result !== undefined) process.stdout.write(JSON.stringify(result, null, process.stdout.isTTY ? 2 : undefined) + '\n');
    return result;
  }

  /** human prints text for people on stdout unless --json is set (then it goes nowhere). */
  protected human(text: string): void {
    if (!this.flags?.json) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** progress prints a progress line on stderr. */
  protected progress(text: string): void {
    process.stderr.write(text + '\n');
  }

  /** catch maps every error to a one-line message on stderr and a non-zero exit; no stack unless --debug. */
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    const debug = Boolean(this.flags?.debug) || Boolean(process.env.DEBUG) || process.argv.includes('--debug');
    if (err instanceof FactoryError) {
      process.stderr.write(err instanceof SpecError ? `${err.message}\n` : `factory: ${err.message}\n`);
      if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
      if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    // oclif's own exits (this.exit) and parse errors carry oclif.exit
    if (err?.oclif?.exit !== undefined && err.message.startsWith('EEXIT')) {
      process.exitCode = err.oclif.exit;
      return;
    }
    const parseError = err?.oclif?.exit !== undefined;
    process.stderr.write(`factory: ${parseError ? '' : 'internal error: '}${err?.message ?? String(err)}\n`);
    if (debug && err?.stack) process.stderr.write(`${err.stack}\n`);
    else if (!parseError) process.stderr.write('hint: run again with --debug for details\n');
    // 2 is reserved for "changes present" (--detailed-exitcode): every error exits 1
    process.exitCode = 1;
  }
}
