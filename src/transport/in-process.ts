/**
 * The in-process transport: the executor runs inside the CLI's own process, speaking the same JSON
 * lines protocol over a pair of in-memory streams. It is how the embedded default agent `local` is
 * reached: no second Node process to start (≈ 45 ms of Node plus the executor's own module loading
 * and discovery), while the control side and the executor still meet only at the protocol, exactly
 * as over a child process or SSH.
 *
 * The executor code comes from the built bundle (dist/executor.bundle.mjs), the same file SSH agents
 * run; its docker driver (dockerode) sits in a separate file that is read only when an engine answers.
 * Tasks are started detached, so they outlive the CLI as they outlive a child-process executor.
 *
 * `FACTORY_LOCAL_EXECUTOR=child` makes local agents use LocalTransport (a child process) instead.
 */
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { AgentError, FactoryError } from '../errors.js';
import type { ExecutorIO } from '../executors/executor.js';
import { builtExecutorFile, findPackageRoot } from './local.js';
import type { Transport, TransportChannel, TransportExit } from './transport.js';

/** ExecutorModule is what the executor bundle exports (typed from the source it is built from). */
type ExecutorModule = { Executor: new (io: ExecutorIO) => { start(): void; close(code: number): void } };

/** executorBundlePath is the built executor bundle inside the package; a FactoryError when it was not built. */
export function executorBundlePath(root: string = findPackageRoot()): string {
  return builtExecutorFile(root, 'executor.bundle.mjs');
}

/** InProcessTransportOptions tunes the in-process transport (mostly for tests). */
export interface InProcessTransportOptions {
  /** bundle overrides the executor bundle's path. */
  bundle?: string;
  /** closeTimeoutMs is how long close() waits for the executor to finish its pending replies (default 3000). */
  closeTimeoutMs?: number;
}

/** InProcessTransport runs the executor in this process, over in-memory streams. */
export class InProcessTransport implements Transport {
  /** agent is the agent's name (default `local`). */
  readonly agent: string;

  constructor(agent = 'local', private readonly opts: InProcessTransportOptions = {}) {
    this.agent = agent;
  }

  /** open loads the executor bundle (once per process) and starts an executor on a fresh pair of streams. */
  async open(): Promise<TransportChannel> {
    let mod: ExecutorModule;
    try {
      mod = (await import(pathToFileURL(this.opts.bundle ?? executorBundlePath()).href)) as ExecutorModule;
    } catch (err) {
      const e = err as FactoryError;
      throw new AgentError(this.agent, `cannot load the executor: ${e.message}`, { code: e.code ?? 'E_EXECUTOR', hint: e.hint, cause: err });
    }
    const toExecutor = new PassThrough();
    const fromExecutor = new PassThrough();
    const diagnostics = new PassThrough();
    let resolveExit!: (e: TransportExit) => void;
    const exited = new Promise<TransportExit>((r) => {
      resolveExit = r;
    });
    let ended = false;
    const executor = new mod.Executor({
      input: toExecutor,
      output: fromExecutor,
      log: (m) => {
        if (!diagnostics.writableEnded) diagnostics.write(`${m}\n`);
      },
      exit: (code) => {
        // as a child process would: let the replies already written drain, then end the streams
        setImmediate(() => {
          ended = true;
          fromExecutor.end();
          diagnostics.end();
          resolveExit({ code, signal: null });
        });
      },
    });
    executor.start();
    const closeTimeout = this.opts.closeTimeoutMs ?? 3000;
    return {
      stdin: toExecutor,
      stdout: fromExecutor,
      stderr: diagnostics,
      exited,
      close: async () => {
        if (!toExecutor.writableEnded) toExecutor.end();
        if (ended) return;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((r) => {
          timer = setTimeout(() => r('timeout'), closeTimeout);
          timer.unref();
        });
        if ((await Promise.race([exited, timeout])) === 'timeout') executor.close(0);
        clearTimeout(timer);
        await exited;
      },
    };
  }
}
