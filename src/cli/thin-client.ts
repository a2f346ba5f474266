/**
 * The CLI's thin path to a control host (`factory control serve`): before oclif or any command is
 * loaded, bin/run.cjs asks forward() whether a host serves the state directory of this command. If
 * one does, the command runs there (warm) and its output and exit code come back here; otherwise
 * forward() resolves undefined and the CLI runs the command itself.
 *
 * It must stay small and import nothing but Node's own modules: every CLI run loads it. The build
 * makes it dist/cli/thin-client.cjs (CommonJS: ~5 ms less to start than an ES module), and it
 * imports node:net statically (a dynamic import() would start Node's ES module loader).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { CONTROL_SOCKET, forwardedEnvironment, SERVED_COMMANDS } from '../control/host-protocol.js';

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

/**
 * forward runs argv on the control host of its state directory and resolves to the exit code, or
 * to undefined when no host serves it (no socket, nobody answers, or the host declines because its
 * environment differs): the caller then runs the command itself.
 */
export async function forward(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  if (env.FACTORY_CONTROL === 'off') return undefined;
  const cmd = forwardable(argv, env);
  if (!cmd) return undefined;
  const socket = path.resolve(stateDirOf(argv, env), CONTROL_SOCKET);
  try {
    const st = fs.statSync(socket);
    // only a host of our own user: another user's socket could answer anything
    if (!st.isSocket() || st.uid !== process.getuid?.()) return undefined;
  } catch {
    return undefined;
  }
  const body = Buffer.from(
    JSON.stringify({
      id: cmd.id,
      argv: cmd.rest,
      cwd: process.cwd(),
      env: forwardedEnvironment(env),
      stdoutTTY: process.stdout.isTTY === true,
    }),
  );
  // HTTP/1.0 over the socket, by hand: the host answers without chunked encoding and closes when
  // done, so the answer is the status line, headers, and NDJSON up to the end of the connection.
  // (node:http would cost this short-lived process ~8 ms more to load and set up.)
  const head = `POST /v1/run HTTP/1.0\r\nHost: factory\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  return new Promise<number | undefined>((resolve) => {
    const conn = net.createConnection(socket);
    let header: Buffer | undefined = Buffer.alloc(0); // until the blank line that ends the headers
    let status = 0;
    const decoder = new StringDecoder('utf8');
    // one line per write of the command: a --json document can be tens of MB, so the pieces of an
    // unfinished line are kept in a list and joined once its newline arrives
    let pieces: string[] = [];
    let exit: number | undefined;
    let garbled = false;
    let settled = false;
    const lines = (chunk: string) => {
      let from = 0;
      let nl: number;
      while ((nl = chunk.indexOf('\n', from)) >= 0) {
        pieces.push(chunk.slice(from, nl));
        const line = pieces.join('');
        pieces = [];
        from = nl + 1;
        if (!line) continue;
        let m: { stdout?: string; stderr?: string; exit?: number };
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          garbled = true;
          continue;
        }
        if (m.stdout !== undefined) process.stdout.write(m.stdout);
        if (m.stderr !== undefined) process.stderr.write(m.stderr);
        if (m.exit !== undefined) exit = m.exit;
      }
      if (from < chunk.length) pieces.push(chunk.slice(from));
    };
    conn.on('connect', () => conn.write(Buffer.concat([Buffer.from(head), body])));
    conn.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (header) {
        header = Buffer.concat([header, chunk]);
        const end = header.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(header.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        const rest = header.subarray(end + 4);
        header = undefined;
        if (status !== 200) {
          // 409: the host's environment differs; anything else: run it here rather than fail
          settled = true;
          conn.destroy();
          resolve(undefined);
          return;
        }
        chunk = rest;
      }
      lines(decoder.write(chunk));
    });
    // the end of the connection ends the answer; a host that died mid-answer ends it without the
    // exit line: the command's outcome is unknown, which is a failure, never a silent exit 0
    const finish = () => {
      if (settled) return;
      settled = true;
      if (header) {
        // nothing answered (ECONNREFUSED, ENOENT: a socket left by a host that is gone)
        resolve(undefined);
        return;
      }
      lines(decoder.end());
      if (garbled) {
        process.stderr.write(`factory: the control host at ${socket} sent an answer that is not NDJSON; some output may be missing\n`);
        exit = 1;
      } else if (exit === undefined) {
        process.stderr.write(`factory: the control host at ${socket} went away before the command finished; check \`factory status\`\n`);
        exit = 1;
      }
      resolve(exit);
    };
    conn.on('close', finish);
    conn.on('error', () => undefined); // 'close' follows
  });
}
