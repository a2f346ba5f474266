/**
 * Opening an SSH connection to an agent: pick the key (or ssh-agent), check the host key against
 * known_hosts, authenticate, all within the connect timeout; every failure says what to fix.
 */
import fs from 'node:fs';
import type { Client, ConnectConfig } from 'ssh2';
import type { AgentError } from '../../errors.js';
import { verifyHostKey } from '../known-hosts.js';
import { stepErrors, withTimeout, type StepError } from './steps.js';
import { resolveSshTarget, type SshTransportOptions } from './target.js';

/** connectSsh opens and authenticates an SSH connection to the agent, verifying the host key; the caller ends it. */
export async function connectSsh(agent: string, opts: SshTransportOptions): Promise<Client> {
  const err = stepErrors(agent);
  const t = resolveSshTarget(opts);
  const where = `${t.user}@${t.host}:${t.port}`;
  const timeout = opts.connectTimeoutMs ?? 10_000;
  let keyProblem: AgentError | undefined;
  let privateKey: Buffer | undefined;
  for (const f of t.identityFiles) {
    try {
      privateKey = fs.readFileSync(f);
      break;
    } catch (e) {
      if (opts.identityFile) throw err(`cannot read identityFile ${f}: ${(e as Error).message}`, 'E_SSH_KEY', 'fix ssh.identityFile in the inventory', e);
    }
  }
  if (!privateKey && !t.agentSocket) {
    throw err(`no SSH key to log in to ${where}: no identityFile, no ~/.ssh/id_* and no ssh-agent`, 'E_SSH_KEY', 'set ssh.identityFile in the inventory or start ssh-agent');
  }
  // ssh2 is loaded on the first SSH connection: runs that reach only the local agent never pay for it
  const { Client: SshClient } = await import('ssh2');
  const conn = new SshClient();
  const config: ConnectConfig = {
    host: t.host,
    port: t.port,
    username: t.user,
    readyTimeout: timeout,
    keepaliveInterval: opts.keepaliveMs ?? 2000,
    keepaliveCountMax: 3,
    ...(privateKey ? { privateKey } : {}),
    ...(t.agentSocket ? { agent: t.agentSocket } : {}),
    hostVerifier: (key: Buffer) => {
      try {
        const v = verifyHostKey(t.knownHostsFile, t.host, t.port, key, t.hostKeyPolicy);
        if (v.ok) return true;
        keyProblem =
          v.reason === 'changed'
            ? err(v.message, 'E_HOST_KEY_CHANGED', `if the host was reinstalled, remove its line with: ssh-keygen -R '${t.port === 22 ? t.host : `[${t.host}]:${t.port}`}' -f ${t.knownHostsFile}`)
            : err(v.message, v.reason === 'revoked' ? 'E_HOST_KEY_REVOKED' : 'E_HOST_KEY_UNKNOWN', `add it with: ssh-keyscan -p ${t.port} ${t.host} >> ${t.knownHostsFile} (or set hostKeyPolicy: accept-new)`);
      } catch (e) {
        keyProblem = err(`cannot check the host key against ${t.knownHostsFile}: ${(e as Error).message}`, 'E_HOST_KEY');
      }
      return false;
    },
  };
  const ready = new Promise<Client>((resolve, reject) => {
    conn.once('ready', () => resolve(conn));
    conn.once('error', (e: Error & { level?: string; code?: string }) => reject(keyProblem ?? connectError(err, e, where, timeout)));
    conn.once('close', () => reject(keyProblem ?? err(`connection to ${where} closed during the handshake`, 'E_SSH_CONNECT')));
  });
  try {
    conn.connect(config);
  } catch (e) {
    throw err(`cannot connect to ${where}: ${(e as Error).message}`, 'E_SSH_CONNECT', undefined, e);
  }
  try {
    return await withTimeout(ready, timeout + 1000, () => err(`no SSH handshake from ${where} within ${timeout}ms`, 'E_TIMEOUT', 'is the host up and reachable? (firewall, routing)'));
  } catch (e) {
    conn.destroy();
    throw e;
  }
}

/** connectError turns ssh2's connect error into what went wrong and what to check. */
function connectError(err: StepError, e: Error & { level?: string; code?: string }, where: string, timeout: number): AgentError {
  const msg = e.message ?? String(e);
  if (e.code === 'ECONNREFUSED') return err(`cannot connect to ${where}: connection refused`, 'E_SSH_CONNECT', 'is sshd running on the host and listening on that port?', e);
  if (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') return err(`cannot reach ${where}: ${e.code}`, 'E_SSH_CONNECT', 'check the address and routing', e);
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return err(`cannot resolve host ${where}`, 'E_SSH_CONNECT', 'check ssh.host or the ~/.ssh/config alias', e);
  if (/timed out/i.test(msg) || e.code === 'ETIMEDOUT') return err(`no SSH handshake from ${where} within ${timeout}ms`, 'E_TIMEOUT', 'is the host up and reachable? (firewall, routing)', e);
  if (e.level === 'client-authentication' || /authentication methods failed/i.test(msg)) {
    return err(`SSH authentication failed for ${where} (key rejected or user unknown)`, 'E_SSH_AUTH', 'check ssh.user and that the identityFile\'s public key is in the user\'s authorized_keys', e);
  }
  return err(`SSH connection to ${where} failed: ${msg}`, 'E_SSH_CONNECT', undefined, e);
}
