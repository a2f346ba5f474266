/**
 * The SSH transport: reach an agent with ssh2, verify its host key against known_hosts, make sure the
 * bundled executor (`dist/executor.bundle.mjs`) sits at a content-addressed path on the agent
 * (`~/.factory/executor-<hash>.mjs`; when missing, the launcher receives it on the exec channel's
 * stdin, or by SFTP where `head` is missing), and start it over that one exec channel without a pty,
 * so the tasks it starts outlive the connection. Every step has a timeout and every failure is an
 * AgentError naming the agent and saying what to fix.
 */
import type { Client } from 'ssh2';
import { AgentError, FactoryError } from '../../errors.js';
import type { Transport, TransportChannel, TransportExit } from '../transport.js';
import { startExecutor } from './bootstrap.js';
import { executorBundle, type ExecutorBundle } from './bundle.js';
import { connectSsh } from './connect.js';
import { execCommand, killRemote, type ExecResult } from './exec.js';
import { stepErrors, type StepError } from './steps.js';
import type { SshTransportOptions } from './target.js';

/** SshTransport starts the executor on one agent over SSH (ssh2). Each open() is its own connection. */
export class SshTransport implements Transport {
  /** agent is the agent's name, used in every error. */
  readonly agent: string;
  /** uploaded is true when the last open() had to upload the executor. */
  uploaded = false;
  private readonly err: StepError;

  constructor(agent: string, private readonly opts: SshTransportOptions) {
    this.agent = agent;
    this.err = stepErrors(agent);
  }

  /** connect opens and authenticates an SSH connection, verifying the host key; the caller ends it. */
  connect(): Promise<Client> {
    return connectSsh(this.agent, this.opts);
  }

  /** exec runs one command over an existing connection and collects its output (bounded in time). */
  static exec(conn: Client, command: string, timeoutMs: number): Promise<ExecResult> {
    return execCommand(conn, command, timeoutMs);
  }

  /** open connects, bootstraps the executor when missing and starts it over an exec channel. */
  async open(): Promise<TransportChannel> {
    let bundle: ExecutorBundle;
    try {
      bundle = this.opts.bundle ?? executorBundle();
    } catch (e) {
      if (e instanceof FactoryError) throw this.err(e.message, e.code, e.hint, e);
      throw e;
    }
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    const conn = await this.connect();
    let connClosed = false;
    const connGone = new Promise<TransportExit>((resolve) => {
      conn.on('close', () => {
        connClosed = true;
        resolve({ code: null, signal: 'connection-lost' });
      });
      conn.on('error', () => undefined);
    });
    try {
      this.uploaded = false;
      const started = await startExecutor(conn, {
        err: this.err,
        bundle,
        nodePath: this.opts.nodePath,
        timeoutMs: timeout,
        onUploaded: () => {
          this.uploaded = true;
        },
      });
      const ch = started.ch;
      const exited = Promise.race([
        new Promise<TransportExit>((resolve) => {
          ch.once('exit', (code: number | null, signal?: string) => resolve({ code, signal: signal ?? null }));
          ch.once('close', () => resolve({ code: null, signal: null }));
        }),
        connGone,
      ]);
      ch.on('error', () => undefined);
      const closeTimeout = this.opts.closeTimeoutMs ?? 3000;
      let ended = false;
      void exited.then(() => {
        ended = true;
        conn.end();
      });
      return {
        stdin: ch,
        stdout: ch,
        stderr: ch.stderr,
        exited,
        close: async () => {
          if (!connClosed) ch.end();
          if (!ended) {
            const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), closeTimeout).unref());
            await Promise.race([exited, timer]);
          }
          // an executor that does not end on EOF (one that never answered hello, say) would stay on
          // the agent as an orphan once the connection goes: kill it, by signal and by pid
          if (!ended && !connClosed) await killRemote(conn, ch, started.pid);
          conn.end();
          // a dead peer never answers the disconnect: do not wait for it
          setTimeout(() => conn.destroy(), 1000).unref();
        },
      };
    } catch (e) {
      conn.destroy();
      if (e instanceof AgentError) throw e;
      throw this.err(`bootstrap failed: ${(e as Error).message}`, 'E_SSH_BOOTSTRAP', undefined, e);
    }
  }
}
