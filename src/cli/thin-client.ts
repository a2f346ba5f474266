/**
 * The CLI's first module (bin/run.cjs loads it before oclif): it puts back the environment
 * bin/factory deferred, and tells which commands a control host could serve without the full CLI.
 *
 * The old relay (POST /v1/run: the whole command run inside the host) is gone with the host's
 * typed HTTP API. Every command now starts the full CLI, which reaches a host through that API
 * (src/cli/base.ts hostTarget(): a named remote, else the state's own socket, else alone).
 * forwardable() and namesRemote() are kept for a typed fast path of `status` and `plan apply`.
 *
 * It must stay small and import nothing but Node's own modules: every CLI run loads it. The build
 * makes it dist/cli/thin-client.cjs (CommonJS: ~5 ms less to start than an ES module).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVED_COMMANDS } from '../control/host-protocol.js';

export { restoreDeferredEnv } from '../executors/deferred-env.js';

/** FORWARDED maps the words of each command a control host serves (`plan apply`) to its id (`plan:apply`). */
const FORWARDED = new Map<string, string>(SERVED_COMMANDS.map((id) => [id.split(':').join(' '), id]));

/**
 * GLOBAL_FLAGS are the global flags of every command (FactoryCommand's baseFlags), whether each
 * takes a value, and whether it names a remote control host. A command that names one is not the
 * local host's business: the thin client leaves it to the full CLI. A test keeps this table equal
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

/** forwardable finds the served command in argv: its id and the arguments after it, or undefined. */
export function forwardable(argv: string[], env: NodeJS.ProcessEnv = process.env): { id: string; rest: string[] } | undefined {
  if (argv.some((a) => a === '--help' || a === '-h')) return undefined;
  const two = FORWARDED.get(`${argv[0]} ${argv[1]}`);
  const one = two ? undefined : FORWARDED.get(argv[0] ?? '');
  if (!two && !one) return undefined;
  // only now (a served command) is the config read: other commands start without the extra file read
  if (namesRemote(argv, env)) return undefined;
  return two ? { id: two, rest: argv.slice(2) } : { id: one!, rest: argv.slice(1) };
}

/** stateDirOf is the state directory a command will use: --state, else FACTORY_STATE, else ./.factory. */
export function stateDirOf(argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--state' && i + 1 < argv.length) return argv[i + 1]!;
    if (a.startsWith('--state=')) return a.slice('--state='.length);
  }
  return env.FACTORY_STATE || './.factory';
}
