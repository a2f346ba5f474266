/**
 * The typed fast path: `factory status` and `factory plan apply FILE…` on a local control host's
 * socket, without oclif. bin/run.cjs loads it (dist/cli/fast-path.cjs: CommonJS, Node's own modules
 * only) when the thin client's fastPathRequest() says the command line is one it understands whole.
 *
 * It runs the same client code the full CLI's commands run on a host (HttpControl over ApiClient:
 * plan files read and sent under the same names, the same errors with the user's file names) and
 * the same rendering (render.ts, render-status.ts, print.ts, progress-lines.ts), so stdout, stderr
 * and the exit code are the full CLI's. What differs: on a terminal the progress of `plan apply`
 * is plain lines, not ora's spinner.
 *
 * A host that cannot be connected to (refused, a stale socket) sends the command back to the full
 * CLI (runFast resolves false) before anything was written to it, and before anything was printed.
 */
import type { OpenedResponse } from '../client/exchange.js';
import { ApiClient, DEFAULT_TIMEOUT_MS, type CallOptions } from '../client/http.js';
import { HttpControl } from '../client/http-control.js';
import { FactoryError } from '../errors.js';
import { applyExitCode } from './exit-codes.js';
import { printError, printHuman, printJson } from './print.js';
import { LineProgress, runWith, type ProgressSink } from './progress-lines.js';
import { renderApply } from './render.js';
import { renderStatus } from './render-status.js';
import type { FastRequest } from './thin-client.js';

/** the package version, set by the bundler (scripts/bundle-cli.mjs); absent when run from the sources */
declare const __FACTORY_VERSION__: string | undefined;

/** FALLBACK is thrown inside runFast when the full CLI is to run the command. */
const FALLBACK = Symbol('fallback');

/** OnceClient is an ApiClient that remembers whether a request was handed to a connected host. */
class OnceClient extends ApiClient {
  /** unreachable is set when a call failed to connect: nothing was sent. */
  unreachable = false;

  override async open(method: string, path: string, opts: CallOptions & { body?: unknown; accept?: string } = {}): Promise<OpenedResponse> {
    try {
      return await super.open(method, path, opts);
    } catch (err) {
      // connection failures (refused, no such socket, a stale socket) come before any byte of the request
      if (err instanceof FactoryError && err.code === 'E_CONTROL_UNREACHABLE') this.unreachable = true;
      throw err;
    }
  }
}

/** QuietUntilAnswered is a progress sink that prints its title only once the host answered (or the operation ended): a fallback prints nothing. */
class QuietUntilAnswered implements ProgressSink {
  private title?: string;
  muted = false;
  constructor(private readonly out: ProgressSink) {}
  private flush(): void {
    if (this.title !== undefined && !this.muted) this.out.start(this.title);
    this.title = undefined;
  }
  start(title: string): void {
    this.title = title;
  }
  step(line: string): void {
    if (this.muted) return;
    this.flush();
    this.out.step(line);
  }
  stop(final?: string): void {
    if (this.muted) return;
    this.flush();
    this.out.stop(final);
  }
  fail(final: string): void {
    if (this.muted) return;
    this.flush();
    this.out.fail(final);
  }
}

/**
 * runFast runs the command on the host and prints what the full CLI prints; it sets process.exitCode
 * and resolves true, or resolves false (nothing sent, nothing printed) for the full CLI to run it.
 */
export async function runFast(req: FastRequest): Promise<boolean> {
  const version = typeof __FACTORY_VERSION__ === 'string' ? __FACTORY_VERSION__ : '0';
  const client = new OnceClient({
    endpoints: [`unix:${req.socket}`],
    timeoutMs: req.timeoutS !== undefined ? Math.round(req.timeoutS * 1000) : DEFAULT_TIMEOUT_MS,
    userAgent: `factory/${version}`,
  });
  const host = new HttpControl(client);
  const fallback = (err: unknown): never => {
    if (client.unreachable) throw FALLBACK;
    throw err;
  };
  try {
    if (req.id === 'status') {
      const r = await host.status({ cached: req.cached, events: req.events }).catch(fallback);
      if (req.json) printJson(r);
      else printHuman(renderStatus(r, { cached: req.cached, events: req.events }));
      return true;
    }
    const progress = new QuietUntilAnswered(new LineProgress(false));
    const result = await runWith(progress, 'apply', `applying ${req.files.join(' ')}`, (step) =>
      host.apply({ paths: req.files, seed: req.seed, progress: step }).catch((err: unknown) => {
        if (client.unreachable) progress.muted = true;
        return fallback(err);
      }),
    );
    if (!req.json) printHuman(renderApply(result, 'apply'));
    process.exitCode = applyExitCode(result);
    if (req.json) printJson(result);
    return true;
  } catch (err) {
    if (err === FALLBACK) return false;
    process.exitCode = printError(err as Error, { debug: false, json: req.json });
    return true;
  }
}
