/**
 * What the CLI and a control host (`factory control serve`) agree on: which commands are forwarded,
 * which environment travels with them, and the shape of a forwarded command. Pure and free of
 * imports beyond node:path, because the thin client (src/cli/thin-client.ts), which every CLI run
 * loads, bundles it.
 */
import path from 'node:path';

/** CONTROL_SOCKET is the control host's socket name inside the state directory. */
export const CONTROL_SOCKET = 'control.sock';

/** SERVED_COMMANDS are the command ids the CLI forwards to a control host. */
export const SERVED_COMMANDS = ['plan:diff', 'plan:apply', 'plan:destroy', 'status', 'agents:list'] as const;

/** PER_COMMAND_ENV are the variables a client sets for its own command: the host sets them for that command alone. */
export const PER_COMMAND_ENV = ['FACTORY_STATE', 'FACTORY_INVENTORY', 'DEBUG', 'CI'] as const;

/**
 * CLIENT_ENV are the variables that say how this CLI reaches a remote control host (URL, token):
 * they never travel to the local host, and a client with a URL set does not forward at all.
 */
export const CLIENT_ENV = ['FACTORY_CONTROL_URL', 'FACTORY_TOKEN', 'FACTORY_TOKEN_FILE'] as const;

/**
 * MATCHED_ENV are the variables outside FACTORY_* that must be the same on the client and the host
 * for a command to behave alike: DOCKER_HOST (the executors' engine), PATH, HOME and LANG (what
 * process tasks get), SSH_AUTH_SOCK (which keys reach SSH agents).
 */
export const MATCHED_ENV = ['DOCKER_HOST', 'PATH', 'HOME', 'LANG', 'SSH_AUTH_SOCK'] as const;

/** controlSocketPath is where the control host of a state directory listens. */
export function controlSocketPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), CONTROL_SOCKET);
}

/**
 * hostEnvironment is the part of an environment that must be the same on the client and the host:
 * FACTORY_* (except the per-command inputs, FACTORY_CONTROL and CLIENT_ENV) and MATCHED_ENV.
 */
export function hostEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const factory =
      k.startsWith('FACTORY_') && !(PER_COMMAND_ENV as readonly string[]).includes(k) && k !== 'FACTORY_CONTROL' && !(CLIENT_ENV as readonly string[]).includes(k);
    if (factory || (MATCHED_ENV as readonly string[]).includes(k)) out[k] = v;
  }
  return out;
}

/** forwardedEnvironment is what a client sends: hostEnvironment plus its per-command variables. */
export function forwardedEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out = hostEnvironment(env);
  for (const k of PER_COMMAND_ENV) if (env[k] !== undefined) out[k] = env[k]!;
  return out;
}

/** RunRequest is one forwarded command. */
export interface RunRequest {
  id: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** stdoutTTY says whether the client's stdout is a terminal (it decides how --json is indented). */
  stdoutTTY?: boolean;
}

/** parseRunRequest validates a /v1/run body; a string is why it is refused. */
export function parseRunRequest(text: string): RunRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'body is not JSON';
  }
  const r = v as Partial<RunRequest>;
  if (!r || typeof r !== 'object') return 'body is not an object';
  if (typeof r.id !== 'string' || !(SERVED_COMMANDS as readonly string[]).includes(r.id)) return `command ${JSON.stringify(r.id)} is not served by the control host`;
  if (!Array.isArray(r.argv) || !r.argv.every((a) => typeof a === 'string')) return 'argv must be a list of strings';
  if (typeof r.cwd !== 'string' || !path.isAbsolute(r.cwd)) return 'cwd must be an absolute path';
  if (!r.env || typeof r.env !== 'object' || !Object.values(r.env).every((x) => typeof x === 'string')) return 'env must map names to strings';
  if (r.stdoutTTY !== undefined && typeof r.stdoutTTY !== 'boolean') return 'stdoutTTY must be a boolean';
  return { id: r.id, argv: r.argv, cwd: r.cwd, env: r.env as Record<string, string>, stdoutTTY: r.stdoutTTY === true };
}
