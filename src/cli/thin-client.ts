/**
 * The CLI's thin path to a control host (`factory control serve`): before oclif or any command is
 * loaded, bin/run.cjs asks forward() whether a host serves the state directory of this command. If
 * one does, the command runs there (warm) and its output and exit code come back here; otherwise
 * forward() resolves undefined and the CLI runs the command itself.
 *
 * It must stay small and import nothing but Node's own modules: every CLI run loads it. The build
 * makes it dist/cli/thin-client.cjs (CommonJS: ~5 ms less to start than an ES module).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONTROL_SOCKET, forwardedEnvironment } from '../control/host-protocol.js';

export { restoreDeferredEnv } from '../executors/deferred-env.js';

/** FORWARDED maps `topic command` words to the command ids a control host serves (SERVED_COMMANDS in control/host-protocol.ts). */
const FORWARDED: Record<string, string> = {
  'plan diff': 'plan:diff',
  'plan apply': 'plan:apply',
  'plan destroy': 'plan:destroy',
  status: 'status',
  'agents list': 'agents:list',
};

/** forwardable finds the served command in argv: its id and the arguments after it, or undefined. */
export function forwardable(argv: string[]): { id: string; rest: string[] } | undefined {
  if (argv.some((a) => a === '--help' || a === '-h')) return undefined;
  const two = FORWARDED[`${argv[0]} ${argv[1]}`];
  if (two) return { id: two, rest: argv.slice(2) };
  const one = argv[0] === 'status' ? FORWARDED.status : undefined;
  return one ? { id: one, rest: argv.slice(1) } : undefined;
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
  const cmd = forwardable(argv);
  if (!cmd) return undefined;
  const socket = path.resolve(stateDirOf(argv, env), CONTROL_SOCKET);
  try {
    const st = fs.statSync(socket);
    // only a host of our own user: another user's socket could answer anything
    if (!st.isSocket() || st.uid !== process.getuid?.()) return undefined;
  } catch {
    return undefined;
  }
  const { default: http } = await import('node:http');
  const body = JSON.stringify({
    id: cmd.id,
    argv: cmd.rest,
    cwd: process.cwd(),
    env: forwardedEnvironment(env),
    stdoutTTY: process.stdout.isTTY === true,
  });
  return new Promise<number | undefined>((resolve) => {
    let answered = false;
    const req = http.request({ socketPath: socket, path: '/v1/run', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) {
        // 409: the host's environment differs; anything else: run it here rather than fail
        res.resume();
        resolve(undefined);
        return;
      }
      answered = true;
      // one line per write of the command: a --json document can be tens of MB, so the pieces of an
      // unfinished line are kept in a list and joined once its newline arrives
      let pieces: string[] = [];
      let exit: number | undefined;
      let garbled = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
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
      });
      // a host that dies mid-answer ends the response with 'aborted' / 'error' and no 'end': the
      // command's outcome is unknown, which is a failure, never the exit code 0 of a silent end
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        if (garbled) {
          process.stderr.write(`factory: the control host at ${socket} sent an answer that is not NDJSON; some output may be missing\n`);
          exit = 1;
        } else if (exit === undefined) {
          process.stderr.write(`factory: the control host at ${socket} went away before the command finished; check \`factory status\`\n`);
          exit = 1;
        }
        resolve(exit);
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('aborted', finish);
      res.on('error', finish);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) return; // the response's end reports it
      // ECONNREFUSED / ENOENT: a socket left by a host that is gone
      void err;
      resolve(undefined);
    });
    req.end(body);
  });
}
