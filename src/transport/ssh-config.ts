/**
 * A small reader of OpenSSH client config files (`~/.ssh/config`): enough to resolve an inventory's
 * `ssh.host` when it is a host alias. It understands `Host` blocks with `*`/`?` patterns and `!`
 * negation, `Match all`, and the keywords factory uses; the first value obtained wins, as in ssh(1).
 * Anything else (Include, Match exec, ProxyJump…) is ignored rather than guessed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** SshConfigEntry is what the config says about one host alias (keys lower-cased, first value wins). */
export interface SshConfigEntry {
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles: string[];
  identityAgent?: string;
  userKnownHostsFile?: string;
  strictHostKeyChecking?: string;
}

interface Block {
  patterns: string[];
  options: [string, string][];
}

/** DEFAULT_SSH_CONFIG is the user's OpenSSH client config path. */
export const DEFAULT_SSH_CONFIG = path.join(os.homedir(), '.ssh', 'config');

function splitArgs(rest: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(rest); m; m = re.exec(rest)) out.push(m[1] ?? m[2] ?? '');
  return out;
}

/** parseBlocks splits config text into Host blocks (options before the first Host apply to all hosts). */
function parseBlocks(text: string): Block[] {
  const blocks: Block[] = [{ patterns: ['*'], options: [] }];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^(\S+?)(?:\s*=\s*|\s+)(.*)$/);
    if (!m) continue;
    const key = (m[1] ?? '').toLowerCase();
    const args = splitArgs(m[2] ?? '');
    if (key === 'host') blocks.push({ patterns: args, options: [] });
    else if (key === 'match') blocks.push({ patterns: args.length === 1 && args[0]?.toLowerCase() === 'all' ? ['*'] : [], options: [] });
    else blocks[blocks.length - 1]!.options.push([key, args.join(' ')]);
  }
  return blocks;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** hostMatches applies ssh_config(5) pattern-list rules: any positive match and no negated match. */
export function hostMatches(patterns: string[], host: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globToRegExp(p.slice(1)).test(host)) return false;
    } else if (globToRegExp(p).test(host)) matched = true;
  }
  return matched;
}

function expandTokens(value: string, host: string, entry: SshConfigEntry): string {
  return value
    .replace(/^~(?=$|\/)/, os.homedir())
    .replace(/%h/g, entry.hostName ?? host)
    .replace(/%n/g, host)
    .replace(/%d/g, os.homedir())
    .replace(/%%/g, '%');
}

/** resolveSshConfigText answers what `text` says about `host` (ssh -G, restricted to the keys factory uses). */
export function resolveSshConfigText(text: string, host: string): SshConfigEntry {
  const entry: SshConfigEntry = { identityFiles: [] };
  for (const block of parseBlocks(text)) {
    if (!hostMatches(block.patterns, host)) continue;
    for (const [key, value] of block.options) {
      switch (key) {
        case 'hostname':
          entry.hostName ??= value;
          break;
        case 'port': {
          const n = Number(value);
          if (entry.port === undefined && Number.isInteger(n) && n > 0 && n < 65536) entry.port = n;
          break;
        }
        case 'user':
          entry.user ??= value;
          break;
        case 'identityfile':
          entry.identityFiles.push(expandTokens(value, host, entry));
          break;
        case 'identityagent':
          entry.identityAgent ??= expandTokens(value, host, entry);
          break;
        case 'userknownhostsfile':
          entry.userKnownHostsFile ??= expandTokens(value.split(' ')[0] ?? value, host, entry);
          break;
        case 'stricthostkeychecking':
          entry.strictHostKeyChecking ??= value.toLowerCase();
          break;
        default:
          break;
      }
    }
  }
  return entry;
}

/** resolveSshConfig reads `file` (default ~/.ssh/config) and resolves `host`; a missing file resolves to nothing. */
export function resolveSshConfig(host: string, file: string = DEFAULT_SSH_CONFIG): SshConfigEntry {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { identityFiles: [] };
  }
  return resolveSshConfigText(text, host);
}
