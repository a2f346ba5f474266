/**
 * Short commands over an open SSH connection: run one and collect its output, or end an executor
 * that outlived its session. Both are bounded in time.
 */
import type { Client, ClientChannel } from 'ssh2';
import { withTimeout } from './steps.js';

/** ExecResult is how a command ended and what it printed. */
export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** execCommand runs one command over an existing connection and collects its output (bounded in time). */
export function execCommand(conn: Client, command: string, timeoutMs: number): Promise<ExecResult> {
  return withTimeout(
    new Promise((resolve, reject) => {
      conn.exec(command, (err, ch) => {
        if (err) return reject(err);
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        ch.on('data', (d: Buffer) => (stdout += d.toString()));
        ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        ch.on('exit', (c: number | null) => (code = c));
        ch.on('close', () => resolve({ code, stdout, stderr }));
        ch.end();
      });
    }),
    timeoutMs,
    () => new Error(`command did not finish within ${timeoutMs}ms`),
  );
}

/** killRemote ends an executor that outlived its session: a KILL signal on its channel, then `kill -9` of its pid. */
export async function killRemote(conn: Client, ch: ClientChannel, pid: number | undefined): Promise<void> {
  try {
    ch.signal('KILL');
  } catch {
    // a server without channel signals: the pid below
  }
  if (!pid) return;
  await withTimeout(
    new Promise<void>((resolve) => {
      conn.exec(`kill -9 ${Math.floor(pid)} 2>/dev/null; true`, (err, k) => {
        if (err) return resolve();
        k.on('close', () => resolve());
        k.resume();
        k.stderr.resume();
      });
    }),
    2000,
    () => new Error('kill timed out'),
  ).catch(() => undefined);
}
