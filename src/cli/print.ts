/**
 * What a command prints besides its progress: the `--json` document, the human text, and an error
 * as a message and an exit code. Shared by FactoryCommand (src/cli/base.ts) and the CLI's fast path
 * (src/cli/fast-path.ts), so both print the same bytes; no oclif here.
 */
import { FactoryError, SpecError } from '../errors.js';

/** printJson prints a command's result as one JSON document: indented on a terminal, compact for pipes (a 100k-task plan is tens of MB). */
export function printJson(result: unknown): void {
  if (result !== undefined) process.stdout.write(JSON.stringify(result, null, process.stdout.isTTY ? 2 : undefined) + '\n');
}

/** printHuman prints text for people on stdout, with one trailing newline. */
export function printHuman(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** errorDocument is an error as `--json` prints it: code, message, hint, and a spec error's issues. */
export function errorDocument(err: Error | undefined, parseError = false): { code: string; message: string; hint?: string; issues?: unknown[] } {
  if (err instanceof FactoryError) {
    return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err instanceof SpecError ? { issues: err.issues } : {}) };
  }
  return { code: parseError ? 'E_USAGE' : 'E_INTERNAL', message: err?.message ?? String(err), ...(parseError ? {} : { hint: 'run again with --debug for details' }) };
}

/**
 * printError prints an error on stderr (a FactoryError as its message and hint, a SpecError as its
 * `file:line:col` lines, anything else as an internal error) and returns the exit code; the stack
 * only with debug. `parseError` marks a usage error (no "internal error", no hint).
 */
export function printError(err: Error | undefined, opts: { debug: boolean; parseError?: boolean; json?: boolean }): number {
  // with --json the error is a document on stdout too, so a script never parses stderr
  if (opts.json) printJson({ error: errorDocument(err, Boolean(opts.parseError)) });
  if (err instanceof FactoryError) {
    process.stderr.write(err instanceof SpecError ? `${err.message}\n` : `factory: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (opts.debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const parseError = Boolean(opts.parseError);
  process.stderr.write(`factory: ${parseError ? '' : 'internal error: '}${err?.message ?? String(err)}\n`);
  if (opts.debug && err?.stack) process.stderr.write(`${err.stack}\n`);
  else if (!parseError) process.stderr.write('hint: run again with --debug for details\n');
  // 2 is reserved for "changes present" (--detailed-exitcode): every error exits 1
  return 1;
}
