/**
 * Where and how to reach an agent over SSH: the inventory's options, resolved against
 * ~/.ssh/config and OpenSSH's defaults into one concrete target.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_KNOWN_HOSTS, type HostKeyPolicy } from '../known-hosts.js';
import { DEFAULT_SSH_CONFIG, resolveSshConfig } from '../ssh-config.js';
import type { ExecutorBundle } from './bundle.js';

/** SshTarget is how to reach an agent over SSH, as an inventory gives it (spec/model.ts: `transport: {kind: ssh, …}`). */
export interface SshTarget {
  /** host is an address, a DNS name or a `~/.ssh/config` Host alias. */
  host: string;
  /** port defaults to ~/.ssh/config's, else 22. */
  port?: number;
  user?: string;
  identityFile?: string;
  /** nodePath is the Node binary on the agent (default `node`, found on the login PATH). */
  nodePath?: string;
  knownHostsFile?: string;
  /** hostKeyPolicy: `strict` (default) refuses unknown hosts, `accept-new` records them. */
  hostKeyPolicy?: HostKeyPolicy;
}

/** SshTransportOptions is everything needed to reach one agent over SSH: its target and how the connection behaves. */
export interface SshTransportOptions extends SshTarget {
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
