/**
 * Control host addresses and certificate pins as the user gives them: `https://host:port`,
 * `http://host:port` (loopback tests) or `unix:/path/control.sock`, and SHA-256 fingerprints in
 * openssl's form. Bad ones are usage errors naming what was given.
 */
import { FactoryError } from '../errors.js';

/** Endpoint is one parsed control host address. */
export type Endpoint =
  | { kind: 'unix'; url: string; path: string }
  | { kind: 'https' | 'http'; url: string; host: string; port: number };

/** parseEndpoint parses one control URL; a bad one is a FactoryError naming it. */
export function parseEndpoint(url: string): Endpoint {
  const u = url.trim();
  if (u.startsWith('unix:')) {
    const p = u.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!p) throw new FactoryError(`bad control URL ${JSON.stringify(url)}: no socket path`, { code: 'E_USAGE' });
    return { kind: 'unix', url: `unix:${p}`, path: p };
  }
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new FactoryError(`bad control URL ${JSON.stringify(url)}`, { code: 'E_USAGE', hint: 'use https://host:port or unix:/path/to/control.sock' });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new FactoryError(`bad control URL ${JSON.stringify(url)}: scheme must be https, http or unix`, { code: 'E_USAGE' });
  }
  const kind = parsed.protocol === 'https:' ? 'https' : 'http';
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port ? Number(parsed.port) : kind === 'https' ? 443 : 80;
  return { kind, url: `${kind}://${parsed.host}`, host, port };
}

/** normalizeFingerprint turns `ab:cd…` or `ABCD…` into uppercase colon-separated hex (openssl's form). */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.trim().replace(/^sha256[:=]?/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new FactoryError(`bad fingerprint ${JSON.stringify(fp)}: want 64 hex digits of a SHA-256`, { code: 'E_USAGE' });
  return hex.match(/../g)!.join(':');
}

/** isLoopback tells whether a host is this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
