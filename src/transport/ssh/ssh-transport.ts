/**
 * The SSH transport: reach an agent with ssh2, verify its host key against known_hosts, make sure the
 * bundled executor (`dist/executor.bundle.mjs`) sits at a content-addressed path on the agent
 * (`~/.factory/executor-<hash>.mjs`; when missing, the launcher receives it on the exec channel's
 * stdin, or by SFTP where `head` is missing), and start it over that one exec channel without a pty,
 * so the tasks it starts outlive the connection. Every step has a timeout and every failure is an
 * AgentError naming the agent and saying what to fix.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { AgentError, FactoryError } from '../../errors.js';
import { DEFAULT_KNOWN_HOSTS, verifyHostKey, type HostKeyPolicy } from '../known-hosts.js';
import { findPackageRoot } from '../local.js';
import { DEFAULT_SSH_CONFIG, resolveSshConfig } from '../ssh-config.js';
import type { Transport, TransportChannel, TransportExit } from '../transport.js';

/** SshTransportOptions is everything needed to reach one agent over SSH. */
export interface SshTransportOptions {
  /** host is an address, a DNS name or a `~/.ssh/config` Host alias. */
  host: string;
  port?: number;
  user?: string;
  identityFile?: string;
  /** nodePath is the Node binary on the agent (default `node`, found on the login PATH). */
  nodePath?: string;
  knownHostsFile?: string;
  /** hostKeyPolicy: `strict` (default) refuses unknown hosts, `accept-new` records them. */
  hostKeyPolicy?: HostKeyPolicy;
  /** sshConfigFile is the OpenSSH client config to read aliases from (default ~/.ssh/config). */
  sshConfigFile?: string;
  /** connectTimeoutMs bounds TCP connect + handshake + auth, and each bootstrap step (default 10000). */
  connectTimeoutMs?: number;
  /** keepaliveMs is the SSH keepalive period; 3 missed keepalives end the connection (default 2000). */
  keepaliveMs?: number;
  /** closeTimeoutMs is how long close() waits for the executor to exit after EOF (default 3000). */
  closeTimeoutMs?: number;
  /** bundle overrides the executor bundle (tests). */
  bundle?: ExecutorBundle;
}

/** ExecutorBundle is the one-file executor program and its content hash. */
export interface ExecutorBundle {
  path: string;
  content: Buffer;
  hash: string;
  /**
   * docker is the docker driver's own file (dockerode is most of the executor's weight), which the
   * executor imports from next to itself only when a docker engine answers. It is uploaded only to
   * agents that look like they have docker (a socket at /var/run/docker.sock, or DOCKER_HOST /
   * FACTORY_DOCKER_HOST set). Its content-addressed name is baked into the executor.
   */
  docker?: { name: string; path: string };
}

/** EXIT_EXECUTOR_MISSING is the launcher's exit code when the executor file is not on the agent. */
export const EXIT_EXECUTOR_MISSING = 97;
/** EXIT_DOCKER_DRIVER_MISSING is the launcher's exit code when only the docker driver's file is missing on a docker host. */
export const EXIT_DOCKER_DRIVER_MISSING = 96;
/** DOCKER_DRIVER_MISSING is what the launcher says on stderr when the docker driver's file should be uploaded too. */
export const DOCKER_DRIVER_MISSING = 'docker-driver-missing';
/** EXIT_NODE_MISSING is the launcher's exit code when the Node binary cannot be found. */
export const EXIT_NODE_MISSING = 127;
/** LAUNCH_MARKER is what the launcher writes on stderr just before it execs the executor. */
export const LAUNCH_MARKER = 'factory-launch: ok';
/** LAUNCH_LINE matches the marker line with the executor's pid on the agent. */
const LAUNCH_LINE = /factory-launch: ok pid (\d+)\n/;

let cachedBundle: ExecutorBundle | undefined;

/**
 * executorBundle reads the built bundle once and returns it with its sha256 (first 16 hex digits),
 * and the docker driver's file named by dist/executor.bundle.json (read only when uploaded).
 */
export function executorBundle(root: string = findPackageRoot()): ExecutorBundle {
  if (cachedBundle) return cachedBundle;
  const p = path.join(root, 'dist', 'executor.bundle.mjs');
  let content: Buffer;
  try {
    content = fs.readFileSync(p);
  } catch {
    throw new FactoryError(`executor bundle not built: run npm run build (missing ${p})`, { code: 'E_NOT_BUILT', hint: 'npm run build' });
  }
  let docker: ExecutorBundle['docker'];
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'dist', 'executor.bundle.json'), 'utf8')) as { docker?: unknown };
    if (typeof manifest.docker === 'string' && /^executor-docker-[0-9a-f]{16}\.mjs$/.test(manifest.docker) && content.includes(manifest.docker)) {
      docker = { name: manifest.docker, path: path.join(root, 'dist', manifest.docker) };
    }
  } catch {
    /* an older build without a separate docker driver */
  }
  cachedBundle = { path: p, content, hash: createHash('sha256').update(content).digest('hex').slice(0, 16), ...(docker ? { docker } : {}) };
  return cachedBundle;
}

const fileCache = new Map<string, Buffer>();
const fileSizes = new Map<string, number>();

function readCached(file: string): Buffer {
  let b = fileCache.get(file);
  if (!b) {
    b = fs.readFileSync(file);
    fileCache.set(file, b);
  }
  return b;
}

/** shellQuote quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** remoteExecutorPath is the executor's content-addressed path, relative to the agent user's home. */
export function remoteExecutorPath(hash: string): string {
  return `.factory/executor-${hash}.mjs`;
}

/** LauncherOptions say what the launcher checks besides Node and the executor, and how missing files travel. */
export interface LauncherOptions {
  /** docker is the docker driver's file; it is wanted only on hosts that look like they run docker. */
  docker?: { name: string; size: number };
  /**
   * executorSize turns on the inline upload: a missing file is asked for on stderr
   * (`factory-launch: send <what>`) and read from the channel's stdin with `head -c`, so a cold
   * agent costs one exec, not exec + SFTP + exec. Without it (or without `head` on the agent) the
   * launcher exits EXIT_EXECUTOR_MISSING / EXIT_DOCKER_DRIVER_MISSING and the files go by SFTP.
   */
  executorSize?: number;
  /**
   * verifySize makes the launcher check a cached executor before running it: its size, and its
   * SHA-256 (the first 16 hex digits, which name the file) where `sha256sum` exists. A file that
   * does not match (a truncated upload, a full disk) is removed and sent again, instead of leaving
   * the agent lost on every run with Node's loader error.
   */
  verifySize?: number;
}

/** UPLOAD_FAILED_PREFIX starts the launcher's stderr line when an inline upload failed: `prefix<what>|<reason>|<KiB free>`. */
export const UPLOAD_FAILED_PREFIX = 'factory-launch: upload failed|';
/** EXIT_UPLOAD_FAILED is the launcher's exit code when an inline upload failed. */
export const EXIT_UPLOAD_FAILED = 98;
/** SEND_PREFIX starts the launcher's stderr line asking for a file on stdin: `prefix<executor|docker>`. */
export const SEND_PREFIX = 'factory-launch: send ';

/**
 * launcherCommand is the one shell script run on the agent: find Node, find the executor (and, on a
 * docker host, the docker driver's file), receive what is missing, say so on stderr and exec the
 * executor. Only the node path comes from the inventory, and it is quoted; sizes are integers and
 * file names are hex.
 */
export function launcherCommand(hash: string, nodePath = 'node', opts: LauncherOptions = {}): string {
  const file = remoteExecutorPath(hash);
  const docker = opts.docker;
  const lines = [`N=${shellQuote(nodePath)}`, `F="$HOME/${file}"`];
  if (docker) lines.push(`D="$HOME/.factory/${docker.name}"`);
  lines.push(`command -v "$N" >/dev/null 2>&1 || { echo "factory-launch: node not found: $N" >&2; exit ${EXIT_NODE_MISSING}; }`);
  if (opts.verifySize !== undefined) {
    lines.push(
      `ok() { [ -f "$F" ] && [ "$(wc -c <"$F" 2>/dev/null)" -eq ${Math.floor(opts.verifySize)} ] || return 1; command -v sha256sum >/dev/null 2>&1 || return 0; [ "$(sha256sum "$F" | cut -c1-16)" = "${hash}" ]; }`,
      'W=""',
      '[ ! -f "$F" ] || ok || { echo "factory-launch: cached executor $F is damaged (size or hash): replacing it" >&2; rm -f "$F"; }',
      '[ -f "$F" ] || W="executor"',
    );
  } else {
    lines.push('W=""', '[ -f "$F" ] || W="executor"');
  }
  if (docker) lines.push('[ -f "$D" ] || { [ ! -S /var/run/docker.sock ] && [ -z "$FACTORY_DOCKER_HOST$DOCKER_HOST" ]; } || W="$W docker"');
  const fallback = [
    `X=""; case "$W" in *docker*) X=" (${DOCKER_DRIVER_MISSING})";; esac`,
    `[ -f "$F" ] || { echo "factory-launch: executor missing: $F$X" >&2; exit ${EXIT_EXECUTOR_MISSING}; }`,
    `echo "factory-launch: $D missing$X" >&2; exit ${EXIT_DOCKER_DRIVER_MISSING}`,
  ];
  if (opts.executorSize !== undefined) {
    const size = (n: number) => String(Math.floor(n));
    lines.push(
      'if [ -n "$W" ]; then',
      '  if command -v head >/dev/null 2>&1 && mkdir -p -m 700 "$HOME/.factory" 2>/dev/null; then',
      `    recv() { T="$1.tmp-$$"; echo "${SEND_PREFIX}$3" >&2; E=$(head -c "$2" 2>&1 >"$T") && [ "$(wc -c <"$T")" -eq "$2" ] && mv -f "$T" "$1" && return 0; rm -f "$T"; A=$(df -Pk "$HOME/.factory" 2>/dev/null | tail -1 | awk '{print $4}'); E=$(echo "$E" | head -n 1); echo "${UPLOAD_FAILED_PREFIX}$3|\${E:-short write}|$A" >&2; exit ${EXIT_UPLOAD_FAILED}; }`,
      ...(docker ? [`    case "$W" in *docker*) recv "$D" ${size(docker.size)} docker;; esac`] : []),
      `    case "$W" in executor*) recv "$F" ${size(opts.executorSize)} executor;; esac`,
      '  else',
      ...fallback.map((l) => `    ${l}`),
      '  fi',
      'fi',
    );
  } else {
    lines.push('if [ -n "$W" ]; then', ...fallback.map((l) => `  ${l}`), 'fi');
  }
  // exec keeps the shell's pid: the executor's, for the kill of one that never answers
  lines.push(`cd "$HOME" && echo "${LAUNCH_MARKER} pid $$" >&2 && exec "$N" "$F"`);
  return lines.join('\n');
}

/** ResolvedSshTarget is an SshTransportOptions after ~/.ssh/config and defaults were applied. */
export interface ResolvedSshTarget {
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  agentSocket?: string;
  knownHostsFile: string;
  hostKeyPolicy: HostKeyPolicy;
}

function expandHome(p: string): string {
  return p.replace(/^~(?=$|\/)/, os.homedir());
}

/** resolveSshTarget applies ~/.ssh/config (inventory values win over it) and OpenSSH's defaults. */
export function resolveSshTarget(opts: SshTransportOptions): ResolvedSshTarget {
  const cfg = resolveSshConfig(opts.host, opts.sshConfigFile ?? DEFAULT_SSH_CONFIG);
  const defaults = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(os.homedir(), '.ssh', f));
  const identityFiles = opts.identityFile ? [expandHome(opts.identityFile)] : [...cfg.identityFiles, ...defaults].filter((f) => fs.existsSync(f));
  const agentSocket = cfg.identityAgent === 'none' ? undefined : cfg.identityAgent ?? process.env.SSH_AUTH_SOCK;
  const strict = cfg.strictHostKeyChecking;
  return {
    host: cfg.hostName ?? opts.host,
    port: opts.port ?? cfg.port ?? 22,
    user: opts.user ?? cfg.user ?? os.userInfo().username,
    identityFiles,
    ...(agentSocket && fs.existsSync(agentSocket) ? { agentSocket } : {}),
    knownHostsFile: expandHome(opts.knownHostsFile ?? cfg.userKnownHostsFile ?? DEFAULT_KNOWN_HOSTS),
    hostKeyPolicy: opts.hostKeyPolicy ?? (strict === 'accept-new' || strict === 'no' || strict === 'off' ? 'accept-new' : 'strict'),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    t.unref?.();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** SshTransport starts the executor on one agent over SSH (ssh2). Each open() is its own connection. */
export class SshTransport implements Transport {
  /** agent is the agent's name, used in every error. */
  readonly agent: string;
  /** uploaded is true when the last open() had to upload the executor. */
  uploaded = false;

  constructor(agent: string, private readonly opts: SshTransportOptions) {
    this.agent = agent;
  }

  private err(message: string, code: string, hint?: string, cause?: unknown): AgentError {
    return new AgentError(this.agent, message, { code, hint, cause });
  }

  /** connect opens and authenticates an SSH connection, verifying the host key; the caller ends it. */
  async connect(): Promise<Client> {
    const t = resolveSshTarget(this.opts);
    const where = `${t.user}@${t.host}:${t.port}`;
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    let keyProblem: AgentError | undefined;
    let privateKey: Buffer | undefined;
    for (const f of t.identityFiles) {
      try {
        privateKey = fs.readFileSync(f);
        break;
      } catch (e) {
        if (this.opts.identityFile) throw this.err(`cannot read identityFile ${f}: ${(e as Error).message}`, 'E_SSH_KEY', 'fix ssh.identityFile in the inventory', e);
      }
    }
    if (!privateKey && !t.agentSocket) {
      throw this.err(`no SSH key to log in to ${where}: no identityFile, no ~/.ssh/id_* and no ssh-agent`, 'E_SSH_KEY', 'set ssh.identityFile in the inventory or start ssh-agent');
    }
    // ssh2 is loaded on the first SSH connection: runs that reach only the local agent never pay for it
    const { Client: SshClient } = await import('ssh2');
    const conn = new SshClient();
    const config: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      readyTimeout: timeout,
      keepaliveInterval: this.opts.keepaliveMs ?? 2000,
      keepaliveCountMax: 3,
      ...(privateKey ? { privateKey } : {}),
      ...(t.agentSocket ? { agent: t.agentSocket } : {}),
      hostVerifier: (key: Buffer) => {
        try {
          const v = verifyHostKey(t.knownHostsFile, t.host, t.port, key, t.hostKeyPolicy);
          if (v.ok) return true;
          keyProblem =
            v.reason === 'changed'
              ? this.err(v.message, 'E_HOST_KEY_CHANGED', `if the host was reinstalled, remove its line with: ssh-keygen -R '${t.port === 22 ? t.host : `[${t.host}]:${t.port}`}' -f ${t.knownHostsFile}`)
              : this.err(v.message, v.reason === 'revoked' ? 'E_HOST_KEY_REVOKED' : 'E_HOST_KEY_UNKNOWN', `add it with: ssh-keyscan -p ${t.port} ${t.host} >> ${t.knownHostsFile} (or set hostKeyPolicy: accept-new)`);
        } catch (e) {
          keyProblem = this.err(`cannot check the host key against ${t.knownHostsFile}: ${(e as Error).message}`, 'E_HOST_KEY');
        }
        return false;
      },
    };
    const ready = new Promise<Client>((resolve, reject) => {
      conn.once('ready', () => resolve(conn));
      conn.once('error', (e: Error & { level?: string; code?: string }) => reject(keyProblem ?? this.connectError(e, where, timeout)));
      conn.once('close', () => reject(keyProblem ?? this.err(`connection to ${where} closed during the handshake`, 'E_SSH_CONNECT')));
    });
    try {
      conn.connect(config);
    } catch (e) {
      throw this.err(`cannot connect to ${where}: ${(e as Error).message}`, 'E_SSH_CONNECT', undefined, e);
    }
    try {
      return await withTimeout(ready, timeout + 1000, () => this.err(`no SSH handshake from ${where} within ${timeout}ms`, 'E_TIMEOUT', 'is the host up and reachable? (firewall, routing)'));
    } catch (e) {
      conn.destroy();
      throw e;
    }
  }

  private connectError(e: Error & { level?: string; code?: string }, where: string, timeout: number): AgentError {
    const msg = e.message ?? String(e);
    if (e.code === 'ECONNREFUSED') return this.err(`cannot connect to ${where}: connection refused`, 'E_SSH_CONNECT', 'is sshd running on the host and listening on that port?', e);
    if (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') return this.err(`cannot reach ${where}: ${e.code}`, 'E_SSH_CONNECT', 'check the address and routing', e);
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return this.err(`cannot resolve host ${where}`, 'E_SSH_CONNECT', 'check ssh.host or the ~/.ssh/config alias', e);
    if (/timed out/i.test(msg) || e.code === 'ETIMEDOUT') return this.err(`no SSH handshake from ${where} within ${timeout}ms`, 'E_TIMEOUT', 'is the host up and reachable? (firewall, routing)', e);
    if (e.level === 'client-authentication' || /authentication methods failed/i.test(msg)) {
      return this.err(`SSH authentication failed for ${where} (key rejected or user unknown)`, 'E_SSH_AUTH', 'check ssh.user and that the identityFile\'s public key is in the user\'s authorized_keys', e);
    }
    return this.err(`SSH connection to ${where} failed: ${msg}`, 'E_SSH_CONNECT', undefined, e);
  }

  /** exec runs one command over an existing connection and collects its output (bounded in time). */
  static exec(conn: Client, command: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
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

  /** dockerFile is the docker driver's file of the bundle with its size (statted once), if it was built. */
  private dockerFile(bundle: ExecutorBundle): { name: string; size: number; content: () => Buffer } | undefined {
    const d = bundle.docker;
    if (!d) return undefined;
    let size = fileSizes.get(d.path);
    if (size === undefined) {
      try {
        size = fs.statSync(d.path).size;
      } catch {
        return undefined; // not built: the executor reports docker as unavailable, the agent still works
      }
      fileSizes.set(d.path, size);
    }
    return { name: d.name, size, content: () => readCached(d.path) };
  }

  /** killRemote ends an executor that outlived its session: a KILL signal on its channel, then `kill -9` of its pid. */
  private async killRemote(conn: Client, ch: ClientChannel, pid: number | undefined): Promise<void> {
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

  /**
   * startLauncher runs the launcher over an exec channel and resolves when it says it execs the
   * executor, or when it exits. With inline, the files it asks for are written to its stdin.
   */
  private startLauncher(
    conn: Client,
    bundle: ExecutorBundle,
    timeout: number,
    mode: { checkDocker: boolean; inline: boolean },
  ): Promise<{ ch: ClientChannel; exit?: TransportExit; stderr: string; sent: string[]; pid?: number }> {
    const docker = mode.checkDocker ? this.dockerFile(bundle) : undefined;
    const command = launcherCommand(bundle.hash, this.opts.nodePath, {
      ...(docker ? { docker: { name: docker.name, size: docker.size } } : {}),
      ...(mode.inline ? { executorSize: bundle.content.length } : {}),
      verifySize: bundle.content.length,
    });
    return withTimeout(
      new Promise((resolve, reject) => {
        conn.exec(command, (err, ch) => {
          if (err) return reject(this.err(`cannot open an exec channel: ${err.message}`, 'E_SSH_EXEC', undefined, err));
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
      () => this.err(`the launcher did not start within ${timeout}ms`, 'E_TIMEOUT'),
    );
  }

  /**
   * upload puts the bundle at its content-addressed path (and, when asked, the docker driver's file
   * next to it): each a temp file, then an atomic rename; the executor goes last.
   */
  private async upload(conn: Client, bundle: ExecutorBundle, timeout: number, what: { executor: boolean; docker: boolean }): Promise<void> {
    const files: { target: string; content: Buffer }[] = [];
    const docker = what.docker ? this.dockerFile(bundle) : undefined;
    if (docker) files.push({ target: `.factory/${docker.name}`, content: docker.content() });
    if (what.executor) files.push({ target: remoteExecutorPath(bundle.hash), content: bundle.content });
    if (!files.length) return;
    const step = <T>(what: string, fn: (cb: (err: Error | undefined | null, v?: T) => void) => void): Promise<T> =>
      withTimeout(
        new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T)))),
        timeout,
        () => this.err(`SFTP ${what} did not finish within ${timeout}ms`, 'E_TIMEOUT'),
      );
    const sftp = await step<SFTPWrapper>('session', (cb) => conn.sftp((e, s) => cb(e, s))).catch((e) => {
      throw e instanceof AgentError ? e : this.err(`cannot open an SFTP session: ${(e as Error).message}`, 'E_SSH_SFTP', 'enable the sftp Subsystem in sshd_config', e);
    });
    try {
      await step<void>('mkdir', (cb) => sftp.mkdir('.factory', { mode: 0o700 }, () => cb(undefined)));
      for (const { target, content } of files) {
        const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
        try {
          await step<void>('write', (cb) => sftp.writeFile(tmp, content, { mode: 0o644 }, (e) => cb(e)));
        } catch (e) {
          await step<void>('cleanup', (cb) => sftp.unlink(tmp, () => cb(undefined))).catch(() => undefined);
          const free = await SshTransport.exec(conn, 'df -Pk "$HOME/.factory" | tail -1', 5000).catch(() => undefined);
          const avail = free?.stdout.trim().split(/\s+/)[3];
          throw this.err(
            `cannot upload the executor (${content.length} bytes) to ~/${target}: ${(e as Error).message}${avail !== undefined ? ` (${avail} KiB free there)` : ''}`,
            'E_SSH_UPLOAD',
            'free some disk space on the agent (or check permissions of ~/.factory)',
            e,
          );
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
      // one exec: it finds Node and the executor, receives what is missing on stdin and starts it
      let started = await this.startLauncher(conn, bundle, timeout, { checkDocker: true, inline: true });
      if (started.sent.includes('executor')) this.uploaded = true;
      const code = started.exit?.code;
      if (code === EXIT_UPLOAD_FAILED) {
        const line = started.stderr.split('\n').find((l) => l.startsWith(UPLOAD_FAILED_PREFIX)) ?? '';
        const [what, ...rest] = line.slice(UPLOAD_FAILED_PREFIX.length).split('|');
        const avail = rest.length > 1 ? rest.pop()!.trim() : '';
        const reason = rest.join('|').trim() || 'failed';
        const docker = what === 'docker' ? this.dockerFile(bundle) : undefined;
        const size = docker ? docker.size : bundle.content.length;
        const target = docker ? `.factory/${docker.name}` : remoteExecutorPath(bundle.hash);
        throw this.err(
          `cannot upload the executor (${size} bytes) to ~/${target}: ${reason}${avail ? ` (${avail} KiB free there)` : ''}`,
          'E_SSH_UPLOAD',
          'free some disk space on the agent (or check permissions of ~/.factory)',
        );
      }
      if (code === EXIT_EXECUTOR_MISSING || code === EXIT_DOCKER_DRIVER_MISSING) {
        // no `head` on the agent: the missing files go by SFTP, then a second launch
        await this.upload(conn, bundle, timeout, { executor: code === EXIT_EXECUTOR_MISSING, docker: started.stderr.includes(DOCKER_DRIVER_MISSING) });
        this.uploaded = true;
        // the second launch does not ask about the docker file again: it was just uploaded
        started = await this.startLauncher(conn, bundle, timeout, { checkDocker: false, inline: false });
      }
      if (started.exit) {
        const nodePath = this.opts.nodePath ?? 'node';
        if (started.exit.code === EXIT_NODE_MISSING) {
          throw this.err(`Node.js not found on the agent (looked for '${nodePath}' on the login PATH)`, 'E_NODE_MISSING', 'install Node >= 20 on the agent (apt-get install nodejs) or set ssh.nodePath in the inventory');
        }
        const tail = started.stderr.trim().split('\n').slice(-3).join(' / ');
        throw this.err(`the executor launcher failed (exit ${started.exit.code ?? started.exit.signal})${tail ? `: ${tail}` : ''}`, 'E_SSH_EXEC');
      }
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
          if (!ended && !connClosed) await this.killRemote(conn, ch, started.pid);
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
