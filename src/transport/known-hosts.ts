/**
 * known_hosts checking for the SSH transport, OpenSSH's rules: a host is named `host` on port 22 and
 * `[host]:port` otherwise; entries may be hashed (`|1|salt|hmac`); `@revoked` lines refuse a key.
 * A key that matches is accepted; a host known with another key is a hard error (the key changed);
 * an unknown host is refused, or recorded and accepted under `accept-new`.
 */
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** DEFAULT_KNOWN_HOSTS is the user's known_hosts file. */
export const DEFAULT_KNOWN_HOSTS = path.join(os.homedir(), '.ssh', 'known_hosts');

/** HostKeyPolicy is how unknown hosts are treated: `strict` refuses them, `accept-new` records them. */
export type HostKeyPolicy = 'strict' | 'accept-new';

/** HostKeyVerdict is the outcome of checking a presented host key. */
export type HostKeyVerdict =
  | { ok: true; added: boolean }
  | { ok: false; reason: 'changed' | 'unknown' | 'revoked'; message: string };

/** knownHostsName is how OpenSSH names a host in known_hosts: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** keyTypeOf reads the algorithm name at the start of an SSH public key blob (`ssh-ed25519`, …). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

/** fingerprintOf renders a key blob as OpenSSH prints it: `SHA256:<base64 without padding>`. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function nameMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  let matched = false;
  for (const pat of field.split(',')) {
    const neg = pat.startsWith('!');
    const p = neg ? pat.slice(1) : pat;
    const re = new RegExp(`^${p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\[/g, '\\[').replace(/\]/g, '\\]').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
    if (re.test(name)) {
      if (neg) return false;
      matched = true;
    }
  }
  return matched;
}

/** checkKnownHostsText checks a key blob presented by `name` against known_hosts text. */
export function checkKnownHostsText(text: string, name: string, blob: Buffer): HostKeyVerdict | undefined {
  const type = keyTypeOf(blob);
  const b64 = blob.toString('base64');
  let other: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) {
      marker = fields[0];
      fields = fields.slice(1);
    }
    const [names, ktype, key] = fields;
    if (!names || !ktype || !key || !nameMatches(names, name)) continue;
    if (marker === '@revoked') {
      if (key === b64) return { ok: false, reason: 'revoked', message: `host key for ${name} is marked @revoked in known_hosts` };
      continue;
    }
    if (marker === '@cert-authority') continue;
    if (key === b64) return { ok: true, added: false };
    if (ktype === type) other = ktype;
    else other ??= ktype;
  }
  if (other !== undefined) {
    return {
      ok: false,
      reason: 'changed',
      message: `HOST KEY CHANGED for ${name}: it presented ${type} ${fingerprintOf(blob)}, known_hosts has a different ${other} key (possible man-in-the-middle)`,
    };
  }
  return undefined;
}

/** verifyHostKey checks `blob` from host:port against a known_hosts file, appending it under accept-new. */
export function verifyHostKey(file: string, host: string, port: number, blob: Buffer, policy: HostKeyPolicy): HostKeyVerdict {
  const name = knownHostsName(host, port);
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* no file yet: every host is unknown */
  }
  const found = checkKnownHostsText(text, name, blob);
  if (found) return found;
  if (policy !== 'accept-new') {
    return {
      ok: false,
      reason: 'unknown',
      message: `host ${name} is not in ${file} (${keyTypeOf(blob)} ${fingerprintOf(blob)})`,
    };
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.appendFileSync(file, `${text !== '' && !text.endsWith('\n') ? '\n' : ''}${name} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
  return { ok: true, added: true };
}
