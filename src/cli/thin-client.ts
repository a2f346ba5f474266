/**
 * The CLI's first module (bin/run.cjs loads it before oclif): it puts back the environment
 * bin/factory deferred, and tells which commands the fast path runs without the full CLI.
 *
 * The old relay (POST /v1/run: the whole command run inside the host) is gone with the host's
 * typed HTTP API. Every command now starts the full CLI, which reaches a host through that API
 * (src/cli/base.ts hostTarget(): a named remote, else the state's own socket, else alone).
 * fastPathRequest() picks out the two commands the typed fast path runs without oclif (`status`
 * and `plan apply` on a local host's socket, src/cli/fast-path.ts, bundled apart as
 * dist/cli/fast-path.cjs and loaded by bin/run.cjs only for them).
 *
 * It must stay small and import nothing but Node's own modules: every CLI run loads it. The build
 * makes it dist/cli/thin-client.cjs (CommonJS: ~5 ms less to start than an ES module).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { controlSocketPath } from '../control/host-protocol.js';

export { restoreDeferredEnv } from '../executors/deferred-env.js';

/**
 * GLOBAL_FLAGS are the global flags of every command (FactoryCommand's baseFlags), whether each
 * takes a value, and whether it names a remote control host. A command that names one is not the
 * local host's business: the fast path leaves it to the full CLI. A test keeps this table equal
 * to the flags of the oclif manifest.
 */
export const GLOBAL_FLAGS: Readonly<Record<string, { value: boolean; remote: boolean }>> = {
  state: { value: true, remote: false },
  inventory: { value: true, remote: false },
  json: { value: false, remote: false },
  debug: { value: false, remote: false },
  control: { value: true, remote: true },
  context: { value: true, remote: true },
  'token-file': { value: true, remote: false },
  timeout: { value: true, remote: false },
  fingerprint: { value: true, remote: false },
  ca: { value: true, remote: false },
};

/** REMOTE_ENV names a remote control host from the environment (FACTORY_CONTROL_URL). */
const REMOTE_ENV = 'FACTORY_CONTROL_URL';

/**
 * namesRemote tells whether a command names a remote control host: a remote flag, FACTORY_CONTROL_URL,
 * or a `current:` context in the client config (read with a regular expression: no YAML parser here).
 */
export function namesRemote(argv: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  for (const a of argv) {
    if (a === '--') break;
    const m = /^--([a-z-]+)(=|$)/.exec(a);
    if (m && GLOBAL_FLAGS[m[1]!]?.remote) return true;
  }
  if (env[REMOTE_ENV]) return true;
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(env.HOME || os.homedir(), '.config');
  let text: string;
  try {
    text = fs.readFileSync(path.join(base, 'factory', 'config.yaml'), 'utf8');
  } catch {
    return false;
  }
  return /^current:[ \t]*['"]?[^'"\s#]/m.test(text);
}

/** FastRequest is a `status` or `plan apply` the fast path runs on the local host's socket, its flags parsed. */
export interface FastRequest {
  id: 'status' | 'plan:apply';
  /** socket is the host's socket, `<state>/control.sock` (absolute). */
  socket: string;
  json: boolean;
  /** timeoutS is --timeout (seconds), when given. */
  timeoutS?: number;
  /** status: --cached and --events (default 10). */
  cached: boolean;
  events: number;
  /** plan apply: the plan files as given, and --seed (default 1). */
  files: string[];
  seed: number;
}

/**
 * FAST_FLAGS are the flags the fast path understands, per command, and whether each takes a value.
 * Any other flag (--inventory, --debug, --help, --no-json, a remote…) leaves the command to the full CLI.
 */
export const FAST_FLAGS: Readonly<Record<FastRequest['id'], Readonly<Record<string, boolean>>>> = {
  status: { state: true, json: false, timeout: true, cached: false, events: true },
  'plan:apply': { state: true, json: false, timeout: true, seed: true },
};

/**
 * fastPathRequest tells whether argv is a command the fast path runs exactly as the full CLI would:
 * `status` or `plan apply FILE…` with only the flags it understands, plan arguments that are
 * regular files, nothing naming a remote host, FACTORY_CONTROL and FACTORY_THIN not `off`, nothing
 * the full CLI would add (DEBUG's stacks, FACTORY_INVENTORY or a token to send), and a socket of
 * this user on the state directory. Whether the host answers is for the fast path to find out.
 */
export function fastPathRequest(argv: string[], env: NodeJS.ProcessEnv = process.env): FastRequest | undefined {
  if (env.FACTORY_THIN === 'off' || env.FACTORY_CONTROL === 'off' || env.DEBUG || env.FACTORY_TOKEN || env.FACTORY_TOKEN_FILE) return undefined;
  let id: FastRequest['id'];
  let rest: string[];
  if (argv[0] === 'status') [id, rest] = ['status', argv.slice(1)];
  else if (argv[0] === 'plan' && argv[1] === 'apply') [id, rest] = ['plan:apply', argv.slice(2)];
  else return undefined;
  if (id === 'plan:apply' && env.FACTORY_INVENTORY) return undefined;
  const known = FAST_FLAGS[id];
  const values = new Map<string, string | true>();
  const files: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith('-')) {
      files.push(a);
      continue;
    }
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(a);
    if (!m || !(m[1]! in known) || values.has(m[1]!)) return undefined;
    const name = m[1]!;
    if (!known[name]) {
      if (m[2] !== undefined) return undefined;
      values.set(name, true);
      continue;
    }
    const v = m[2] ?? rest[++i];
    if (v === undefined || v === '' || v.startsWith('-')) return undefined;
    values.set(name, v);
  }
  const num = (name: string, ok: (n: number) => boolean, dflt: number): number | undefined => {
    const v = values.get(name);
    if (v === undefined) return dflt;
    const n = name === 'timeout' ? Number(v) : /^\d{1,9}$/.test(v as string) ? Number(v) : NaN;
    return Number.isFinite(n) && ok(n) ? n : undefined;
  };
  const timeoutS = num('timeout', (n) => n > 0, 0);
  const events = num('events', () => true, 10);
  const seed = num('seed', () => true, 1);
  if (timeoutS === undefined || events === undefined || seed === undefined) return undefined;
  if (id === 'status' ? files.length > 0 : files.length === 0) return undefined;
  for (const f of files) {
    try {
      if (!fs.statSync(f).isFile()) return undefined;
    } catch {
      return undefined;
    }
  }
  // only now the config is read (a current context names a remote) and the socket looked at
  if (namesRemote(argv, env)) return undefined;
  const state = (values.get('state') as string | undefined) ?? (env.FACTORY_STATE || './.factory');
  const socket = controlSocketPath(state);
  try {
    const st = fs.statSync(socket);
    // only a host of our own user: another user's socket could answer anything
    if (!st.isSocket() || st.uid !== process.getuid?.()) return undefined;
  } catch {
    return undefined;
  }
  return { id, socket, json: values.has('json'), timeoutS: values.has('timeout') ? timeoutS : undefined, cached: values.has('cached'), events, files, seed };
}
