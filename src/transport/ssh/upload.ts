/**
 * Getting the executor's files onto an agent by SFTP (where the launcher cannot receive them on
 * stdin), and the one error a failed upload becomes, whichever way the files travelled.
 */
import { randomBytes } from 'node:crypto';
import type { Client, SFTPWrapper } from 'ssh2';
import { AgentError } from '../../errors.js';
import { dockerDriverFile, remoteExecutorPath, type ExecutorBundle } from './bundle.js';
import { execCommand } from './exec.js';
import { UPLOAD_FAILED_PREFIX } from './launcher.js';
import { withTimeout, type StepError } from './steps.js';

/** uploadError is the error of an upload that failed: the file, its size, the reason and the space left there (KiB). */
export function uploadError(err: StepError, size: number, target: string, reason: string, availKiB: string | undefined, cause?: unknown): AgentError {
  return err(
    `cannot upload the executor (${size} bytes) to ~/${target}: ${reason}${availKiB ? ` (${availKiB} KiB free there)` : ''}`,
    'E_SSH_UPLOAD',
    'free some disk space on the agent (or check permissions of ~/.factory)',
    cause,
  );
}

/** inlineUploadError reads the launcher's `upload failed|<what>|<reason>|<KiB free>` line into an uploadError. */
export function inlineUploadError(err: StepError, bundle: ExecutorBundle, stderr: string): AgentError {
  const line = stderr.split('\n').find((l) => l.startsWith(UPLOAD_FAILED_PREFIX)) ?? '';
  const [what, ...rest] = line.slice(UPLOAD_FAILED_PREFIX.length).split('|');
  const avail = rest.length > 1 ? rest.pop()!.trim() : '';
  const reason = rest.join('|').trim() || 'failed';
  const docker = what === 'docker' ? dockerDriverFile(bundle) : undefined;
  const size = docker ? docker.size : bundle.content.length;
  const target = docker ? `.factory/${docker.name}` : remoteExecutorPath(bundle.hash);
  return uploadError(err, size, target, reason, avail);
}

/**
 * uploadBySftp puts the bundle at its content-addressed path (and, when asked, the docker driver's
 * file next to it): each a temp file, then an atomic rename; the executor goes last.
 */
export async function uploadBySftp(conn: Client, err: StepError, bundle: ExecutorBundle, timeout: number, what: { executor: boolean; docker: boolean }): Promise<void> {
  const files: { target: string; content: Buffer }[] = [];
  const docker = what.docker ? dockerDriverFile(bundle) : undefined;
  if (docker) files.push({ target: `.factory/${docker.name}`, content: docker.content() });
  if (what.executor) files.push({ target: remoteExecutorPath(bundle.hash), content: bundle.content });
  if (!files.length) return;
  const step = <T>(what: string, fn: (cb: (e: Error | undefined | null, v?: T) => void) => void): Promise<T> =>
    withTimeout(
      new Promise<T>((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v as T)))),
      timeout,
      () => err(`SFTP ${what} did not finish within ${timeout}ms`, 'E_TIMEOUT'),
    );
  const sftp = await step<SFTPWrapper>('session', (cb) => conn.sftp((e, s) => cb(e, s))).catch((e) => {
    throw e instanceof AgentError ? e : err(`cannot open an SFTP session: ${(e as Error).message}`, 'E_SSH_SFTP', 'enable the sftp Subsystem in sshd_config', e);
  });
  try {
    await step<void>('mkdir', (cb) => sftp.mkdir('.factory', { mode: 0o700 }, () => cb(undefined)));
    for (const { target, content } of files) {
      const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await step<void>('write', (cb) => sftp.writeFile(tmp, content, { mode: 0o644 }, (e) => cb(e)));
      } catch (e) {
        await step<void>('cleanup', (cb) => sftp.unlink(tmp, () => cb(undefined))).catch(() => undefined);
        const free = await execCommand(conn, 'df -Pk "$HOME/.factory" | tail -1', 5000).catch(() => undefined);
        throw uploadError(err, content.length, target, (e as Error).message, free?.stdout.trim().split(/\s+/)[3], e);
      }
      await step<void>('rename', (cb) =>
        sftp.ext_openssh_rename(tmp, target, (e) => {
          if (!e) return cb(undefined);
          sftp.rename(tmp, target, () => cb(undefined)); // another upload won the race: same content
        }),
      );
    }
  } finally {
    sftp.end();
  }
}
