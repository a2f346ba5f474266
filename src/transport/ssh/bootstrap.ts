/**
 * Starting the executor on an agent over one exec channel: the launcher finds Node and the cached
 * executor, receives what is missing on the channel's stdin and execs it; without `head` on the
 * agent the missing files go by SFTP, then a second launch.
 */
import type { Client, ClientChannel } from 'ssh2';
import type { TransportExit } from '../transport.js';
import { dockerDriverFile, type ExecutorBundle } from './bundle.js';
import {
  DOCKER_DRIVER_MISSING,
  EXIT_DOCKER_DRIVER_MISSING,
  EXIT_EXECUTOR_MISSING,
  EXIT_NODE_MISSING,
  EXIT_UPLOAD_FAILED,
  LAUNCH_LINE,
  launcherCommand,
  SEND_PREFIX,
} from './launcher.js';
import { withTimeout, type StepError } from './steps.js';
import { inlineUploadError, uploadBySftp } from './upload.js';

/** BootstrapOptions say which executor to start on the agent and how. */
export interface BootstrapOptions {
  /** err makes the errors, naming the agent. */
  err: StepError;
  bundle: ExecutorBundle;
  /** nodePath is the Node binary on the agent (default `node`, found on the login PATH). */
  nodePath?: string;
  /** timeoutMs bounds each launch and each SFTP step. */
  timeoutMs: number;
  /** onUploaded is called when the executor file had to be sent to the agent. */
  onUploaded: () => void;
}

/** StartedExecutor is the executor running on the agent: its exec channel and its pid there. */
export interface StartedExecutor {
  ch: ClientChannel;
  pid?: number;
}

/** LaunchResult is one run of the launcher: it started the executor (pid) or it exited (exit). */
interface LaunchResult {
  ch: ClientChannel;
  exit?: TransportExit;
  stderr: string;
  sent: string[];
  pid?: number;
}

/**
 * startLauncher runs the launcher over an exec channel and resolves when it says it execs the
 * executor, or when it exits. With inline, the files it asks for are written to its stdin.
 */
function startLauncher(conn: Client, o: BootstrapOptions, mode: { checkDocker: boolean; inline: boolean }): Promise<LaunchResult> {
  const { bundle, err, timeoutMs: timeout } = o;
  const docker = mode.checkDocker ? dockerDriverFile(bundle) : undefined;
  const command = launcherCommand(bundle.hash, o.nodePath, {
    ...(docker ? { docker: { name: docker.name, size: docker.size } } : {}),
    ...(mode.inline ? { executorSize: bundle.content.length } : {}),
    verifySize: bundle.content.length,
  });
  return withTimeout(
    new Promise((resolve, reject) => {
      conn.exec(command, (e, ch) => {
        if (e) return reject(err(`cannot open an exec channel: ${e.message}`, 'E_SSH_EXEC', undefined, e));
        let stderr = '';
        let scanned = 0;
        let done = false;
        const sent: string[] = [];
        const onErr = (d: Buffer) => {
          stderr += d.toString();
          // answer each complete "send" line once, in order
          let nl: number;
          while ((nl = stderr.indexOf('\n', scanned)) !== -1) {
            const line = stderr.slice(scanned, nl);
            scanned = nl + 1;
            if (!mode.inline || !line.startsWith(SEND_PREFIX)) continue;
            const what = line.slice(SEND_PREFIX.length).trim();
            if (what === 'executor') ch.write(bundle.content);
            else if (what === 'docker' && docker) ch.write(docker.content());
            else continue;
            sent.push(what);
          }
          const marker = !done ? LAUNCH_LINE.exec(stderr) : null;
          if (marker) {
            done = true;
            ch.stderr.off('data', onErr);
            resolve({ ch, stderr, sent, pid: Number(marker[1]) });
          }
        };
        ch.stderr.on('data', onErr);
        ch.once('exit', (code: number | null, signal?: string) => {
          if (done) return;
          done = true;
          resolve({ ch, exit: { code, signal: signal ?? null }, stderr, sent });
        });
        ch.once('close', () => {
          if (done) return;
          done = true;
          resolve({ ch, exit: { code: null, signal: null }, stderr, sent });
        });
      });
    }),
    timeout,
    () => err(`the launcher did not start within ${timeout}ms`, 'E_TIMEOUT'),
  );
}

/**
 * startExecutor gets the executor running on the agent over conn: one exec finds Node and the
 * executor, receives what is missing on stdin and starts it; where that cannot be (no `head`), the
 * missing files go by SFTP and a second launch starts it. Every failure is an AgentError.
 */
export async function startExecutor(conn: Client, o: BootstrapOptions): Promise<StartedExecutor> {
  let started = await startLauncher(conn, o, { checkDocker: true, inline: true });
  if (started.sent.includes('executor')) o.onUploaded();
  const code = started.exit?.code;
  if (code === EXIT_UPLOAD_FAILED) throw inlineUploadError(o.err, o.bundle, started.stderr);
  if (code === EXIT_EXECUTOR_MISSING || code === EXIT_DOCKER_DRIVER_MISSING) {
    // no `head` on the agent: the missing files go by SFTP, then a second launch
    await uploadBySftp(conn, o.err, o.bundle, o.timeoutMs, { executor: code === EXIT_EXECUTOR_MISSING, docker: started.stderr.includes(DOCKER_DRIVER_MISSING) });
    o.onUploaded();
    // the second launch does not ask about the docker file again: it was just uploaded
    started = await startLauncher(conn, o, { checkDocker: false, inline: false });
  }
  if (started.exit) {
    const nodePath = o.nodePath ?? 'node';
    if (started.exit.code === EXIT_NODE_MISSING) {
      throw o.err(`Node.js not found on the agent (looked for '${nodePath}' on the login PATH)`, 'E_NODE_MISSING', 'install Node >= 20 on the agent (apt-get install nodejs) or set ssh.nodePath in the inventory');
    }
    const tail = started.stderr.trim().split('\n').slice(-3).join(' / ');
    throw o.err(`the executor launcher failed (exit ${started.exit.code ?? started.exit.signal})${tail ? `: ${tail}` : ''}`, 'E_SSH_EXEC');
  }
  return { ch: started.ch, pid: started.pid };
}
