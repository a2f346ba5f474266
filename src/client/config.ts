/**
 * Client contexts: named control hosts in `$XDG_CONFIG_HOME/factory/config.yaml` (default
 * `~/.config/factory/config.yaml`, mode 0600), like kubectl's contexts:
 *
 *   current: prod
 *   contexts:
 *     prod:
 *       control: [https://10.0.0.1:7443, https://10.0.0.2:7443]
 *       tokenFile: ~/.config/factory/prod.token
 *       fingerprint: AB:CD:…
 *
 * The file holds no secret itself (a token file is named, not copied), but it is kept private
 * anyway: it tells where the tokens are and which hosts to trust.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { FactoryError } from '../errors.js';
import { normalizeFingerprint, parseEndpoint } from './endpoint.js';

/** ContextConfig is one named control host. */
export interface ContextConfig {
  /** control are the endpoint URLs, tried in turn. */
  control: string[];
  tokenFile?: string;
  ca?: string;
  fingerprint?: string;
}

/** ClientConfig is the whole file. */
export interface ClientConfig {
  current?: string;
  contexts: Record<string, ContextConfig>;
}

/** CONTEXT_NAME is what a context may be called. */
export const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** configPath is where the client config lives: $XDG_CONFIG_HOME/factory/config.yaml, else ~/.config/…. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'factory', 'config.yaml');
}

/** expandHome turns a leading `~/` into the home directory. */
export function expandHome(p: string, env: NodeJS.ProcessEnv = process.env): string {
  return p === '~' || p.startsWith('~/') ? path.join(env.HOME || os.homedir(), p.slice(1)) : p;
}

/** readConfig reads the config file; a missing file is an empty config, a broken one a FactoryError. */
export function readConfig(file = configPath()): ClientConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw new FactoryError(`cannot read ${file}: ${(err as Error).message}`, { code: 'E_CONFIG' });
  }
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw new FactoryError(`${file}: not YAML: ${(err as Error).message}`, { code: 'E_CONFIG' });
  }
  const problem = validate(doc);
  if (typeof problem === 'string') throw new FactoryError(`${file}: ${problem}`, { code: 'E_CONFIG', hint: 'fix it, or remove it and run `factory context set` again' });
  return problem;
}

function validate(doc: unknown): ClientConfig | string {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return 'not a mapping';
  const d = doc as { current?: unknown; contexts?: unknown };
  if (d.current !== undefined && d.current !== null && typeof d.current !== 'string') return 'current must be a context name';
  const contexts: Record<string, ContextConfig> = {};
  if (d.contexts !== undefined && d.contexts !== null) {
    if (typeof d.contexts !== 'object' || Array.isArray(d.contexts)) return 'contexts must map names to contexts';
    for (const [name, raw] of Object.entries(d.contexts as Record<string, unknown>)) {
      if (!raw || typeof raw !== 'object') return `contexts.${name}: not a mapping`;
      const c = raw as Record<string, unknown>;
      const control = typeof c.control === 'string' ? [c.control] : c.control;
      if (!Array.isArray(control) || control.length === 0 || !control.every((u) => typeof u === 'string')) return `contexts.${name}.control: want a list of URLs`;
      for (const k of ['tokenFile', 'ca', 'fingerprint'] as const) {
        if (c[k] !== undefined && typeof c[k] !== 'string') return `contexts.${name}.${k}: want a string`;
      }
      contexts[name] = {
        control: control as string[],
        ...(c.tokenFile ? { tokenFile: c.tokenFile as string } : {}),
        ...(c.ca ? { ca: c.ca as string } : {}),
        ...(c.fingerprint ? { fingerprint: c.fingerprint as string } : {}),
      };
    }
  }
  return { ...(typeof d.current === 'string' && d.current ? { current: d.current } : {}), contexts };
}

/** writeConfig writes the config atomically with mode 0600 (its folder 0700 when it makes it). */
export function writeConfig(cfg: ClientConfig, file = configPath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const doc: ClientConfig = { ...(cfg.current ? { current: cfg.current } : {}), contexts: cfg.contexts };
  fs.writeFileSync(tmp, stringify(doc), { mode: 0o600 });
  fs.chmodSync(tmp, 0o600); // a umask cannot widen it, but an old tmp file could be wider
  fs.renameSync(tmp, file);
}

/** checkContext validates a context before it is saved: URLs, fingerprint, names. */
export function checkContext(name: string, ctx: ContextConfig): ContextConfig {
  if (!CONTEXT_NAME.test(name)) throw new FactoryError(`bad context name ${JSON.stringify(name)}: letters, digits, '.', '_' and '-'`, { code: 'E_USAGE' });
  if (!ctx.control.length) throw new FactoryError(`context ${name}: --control URL is required`, { code: 'E_USAGE' });
  for (const u of ctx.control) parseEndpoint(u);
  return { ...ctx, ...(ctx.fingerprint ? { fingerprint: splitUrls(ctx.fingerprint).map(normalizeFingerprint).join(',') } : {}) };
}

/** splitUrls splits `a,b` and repeated flags into a list (of URLs, or of fingerprints). */
export function splitUrls(values: string | string[] | undefined): string[] {
  const list = Array.isArray(values) ? values : values ? [values] : [];
  return list
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}
