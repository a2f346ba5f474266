/**
 * The control host (`factory control serve`): a long-running factory process for one state
 * directory. It listens on `<state>/control.sock` (a unix socket, mode 0600: only its user may
 * connect) and runs the commands that the CLI forwards to it — the same oclif commands, in this
 * process, where Node, the modules and the agents' executor sessions are already warm. What a
 * command prints and its exit code go back to the CLI unchanged; the state file is read, locked and
 * written exactly as by a one-shot run, so one-shot CLIs and the host can take turns on one state.
 *
 * Protocol (HTTP/1.1 over the socket):
 *   GET  /v1/health  → {"pid", "stateDir", "socket", "startedAt", "served", "agents"}
 *   POST /v1/run     {"id": "plan:apply", "argv": [...], "cwd": "/abs", "env": {...}}
 *                    → 200 and NDJSON lines {"stdout": text} | {"stderr": text} | {"exit": code}
 *                    → 409 when the client's environment would change what the command does
 *                      (FACTORY_* / DOCKER_HOST differ from the host's): the CLI then runs it itself
 *
 * Commands run one at a time: each runs in the client's working directory with the client's
 * FACTORY_STATE / FACTORY_INVENTORY, and its process-wide output is routed to its own client.
 *
 * Between commands the host supervises: every reconcile interval it runs a supervision pass (the
 * plans as last applied, see reconcileRecorded in plan.ts) when no command is running or waiting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { FactoryError } from '../errors.js';
import { AgentPool, WarmAgents } from './agents.js';
import { controlSocketPath, hostEnvironment, parseRunRequest, PER_COMMAND_ENV, type RunRequest } from './host-protocol.js';

/** CommandRunner runs one command by id with its arguments (oclif's Config.runCommand in the host). */
export type CommandRunner = (id: string, argv: string[]) => Promise<unknown>;

/** ControlHostOptions configures a control host. */
export interface ControlHostOptions {
  stateDir: string;
  run: CommandRunner;
  /** log receives one line per served command and per lifecycle event. */
  log?: (line: string) => void;
  /** env is the host's environment (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** reconcile is the supervision pass, run every reconcileIntervalMs between commands. */
  reconcile?: () => Promise<void>;
  /** reconcileIntervalMs is the time between supervision passes (0 or absent: none). */
  reconcileIntervalMs?: number;
}

type Sink = { write: (stream: 'stdout' | 'stderr', text: string) => void };

/** ControlHost serves forwarded commands on the state directory's socket. */
export class ControlHost {
  private served = 0;
  private passes = 0;
  /** busy says what runs now (a command or a supervision pass), for the clients that have to wait. */
  private busy = '';
  private pending = 0;
  private supervisor?: NodeJS.Timeout;
  private queue: Promise<void> = Promise.resolve();
  private readonly output = new AsyncLocalStorage<Sink>();
  private restoreOutput?: () => void;
  private readonly startedAt = new Date().toISOString();
  private readonly warm = new WarmAgents();

  private constructor(
    private readonly opts: ControlHostOptions,
    readonly socket: string,
    private readonly server: http.Server,
  ) {}

  /**
   * start listens on `<stateDir>/control.sock`. A socket left by a host that is gone is replaced; a
   * live host on the same state is an error naming its pid.
   */
  static async start(opts: ControlHostOptions): Promise<ControlHost> {
    const stateDir = path.resolve(opts.stateDir);
    try {
      fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new FactoryError(`state directory ${stateDir} is not usable: ${(err as Error).message}`, { code: 'E_STATE_DIR' });
    }
    const socket = controlSocketPath(stateDir);
    if (fs.existsSync(socket)) {
      const other = await health(socket, 1000).catch(() => undefined);
      if (other) throw new FactoryError(`a control host already serves ${stateDir} (pid ${other.pid})`, { code: 'E_CONTROL_RUNNING', hint: `stop it first: kill ${other.pid}` });
      fs.rmSync(socket, { force: true }); // left by a host that is gone
    }
    const server = http.createServer();
    const host = new ControlHost({ ...opts, stateDir }, socket, server);
    server.on('request', (req, res) => void host.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new FactoryError(`cannot listen on ${socket}: ${err.message}`, { code: 'E_CONTROL_LISTEN' })));
      // the socket is created under a umask that leaves it to this user alone
      const old = process.umask(0o177);
      server.listen(socket, () => {
        process.umask(old);
        resolve();
      });
    });
    host.captureOutput();
    AgentPool.warm = host.warm;
    host.supervise();
    return host;
  }

  /** supervise schedules the supervision passes; a pass is skipped while a command runs or waits. */
  private supervise(): void {
    const every = this.opts.reconcileIntervalMs ?? 0;
    const pass = this.opts.reconcile;
    if (!pass || every <= 0) return;
    const tick = () => {
      if (this.pending > 0) return void (this.supervisor = setTimeout(tick, every));
      void this.serialized(async () => {
        this.passes++;
        this.busy = 'a supervision pass runs';
        try {
          await pass();
        } catch (err) {
          this.opts.log?.(`reconcile failed: ${(err as Error).message}`);
        } finally {
          this.busy = '';
        }
      }).finally(() => {
        if (this.supervisor !== undefined) this.supervisor = setTimeout(tick, every);
      });
    };
    this.supervisor = setTimeout(tick, every);
  }

  /** close stops listening, removes the socket and ends the warm executor sessions (tasks keep running). */
  async close(): Promise<void> {
    clearTimeout(this.supervisor);
    this.supervisor = undefined;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    fs.rmSync(this.socket, { force: true });
    await this.queue.catch(() => undefined);
    if (AgentPool.warm === this.warm) AgentPool.warm = undefined;
    await this.warm.close();
    this.restoreOutput?.();
  }

  /** captureOutput routes process.stdout/stderr writes made inside a served command to its client. */
  private captureOutput(): void {
    const streams = { stdout: process.stdout, stderr: process.stderr } as const;
    const originals = { stdout: process.stdout.write.bind(process.stdout), stderr: process.stderr.write.bind(process.stderr) };
    for (const name of ['stdout', 'stderr'] as const) {
      const original = originals[name];
      streams[name].write = ((chunk: string | Uint8Array, encoding?: unknown, cb?: unknown) => {
        const sink = this.output.getStore();
        if (!sink) return (original as (...a: unknown[]) => boolean)(chunk, encoding, cb);
        sink.write(name, typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      }) as typeof process.stdout.write;
    }
    this.restoreOutput = () => {
      process.stdout.write = originals.stdout as typeof process.stdout.write;
      process.stderr.write = originals.stderr as typeof process.stderr.write;
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (req.method === 'GET' && req.url === '/v1/health') {
        return json(res, 200, {
          pid: process.pid, stateDir: path.resolve(this.opts.stateDir), socket: this.socket, startedAt: this.startedAt,
          served: this.served, agents: this.warm.size, reconcileIntervalMs: this.opts.reconcileIntervalMs ?? 0, reconcilePasses: this.passes,
        });
      }
      if (req.method !== 'POST' || req.url !== '/v1/run') return json(res, 404, { error: `no such endpoint: ${req.method} ${req.url}` });
      const body = await readBody(req);
      const run = parseRunRequest(body);
      if (typeof run === 'string') return json(res, 400, { error: run });
      const mine = hostEnvironment(this.opts.env ?? process.env);
      const theirs = hostEnvironment(run.env);
      const differs = [...new Set([...Object.keys(mine), ...Object.keys(theirs)])].filter((k) => mine[k] !== theirs[k]).sort();
      if (differs.length > 0) return json(res, 409, { error: `the control host's environment differs in ${differs.join(', ')}` });
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (this.busy) res.write(`${JSON.stringify({ stderr: `factory: waiting for the control host (pid ${process.pid}): ${this.busy}\n` })}\n`);
      // a client that went away while it waited (Ctrl-C) does not get its command run later, unseen
      let gone = false;
      res.on('close', () => {
        if (!res.writableEnded) gone = true;
      });
      this.pending++;
      const code = await this.serialized(async () => {
        if (gone) {
          this.opts.log?.(`dropped ${run.id.replace(/:/g, ' ')} ${run.argv.join(' ')}: its client went away before it started`);
          return undefined;
        }
        return this.runOne(run, res);
      }).finally(() => this.pending--);
      if (code !== undefined) res.end(`${JSON.stringify({ exit: code })}\n`);
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: (err as Error).message });
      else res.end(`${JSON.stringify({ stderr: `factory: control host: ${(err as Error).message}\n` })}\n${JSON.stringify({ exit: 1 })}\n`);
    }
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /** runOne runs a command with the client's cwd and inputs, its output streamed to res; resolves to its exit code. */
  private async runOne(run: RunRequest, res: http.ServerResponse): Promise<number> {
    const started = Date.now();
    const cwd = process.cwd();
    const saved = Object.fromEntries(PER_COMMAND_ENV.map((k) => [k, process.env[k]]));
    // a timer a command left behind may still print after its answer ended: that text is dropped
    const sink: Sink = { write: (stream, text) => void (res.writableEnded || res.destroyed ? undefined : res.write(`${JSON.stringify({ [stream]: text })}\n`)) };
    // served commands print progress as into a pipe (no spinner), whatever the host's own stdio is;
    // --json is indented when the client's stdout is a terminal, as it would be run alone
    const tty = { out: process.stdout.isTTY, err: process.stderr.isTTY };
    const argv = process.argv;
    let code = 0;
    try {
      this.busy = `${run.id.replace(/:/g, ' ')} runs`;
      process.stdout.isTTY = run.stdoutTTY === true;
      process.stderr.isTTY = false;
      // what the command sees of its own command line (--debug is looked up there too)
      process.argv = [argv[0]!, argv[1]!, ...run.id.split(':'), ...run.argv];
      process.chdir(run.cwd);
      for (const k of PER_COMMAND_ENV) {
        if (run.env[k] === undefined) delete process.env[k];
        else process.env[k] = run.env[k];
      }
      process.exitCode = undefined;
      await this.output.run(sink, async () => {
        try {
          await this.opts.run(run.id, run.argv);
        } catch (err) {
          // oclif's exits (this.exit, parse errors handled by the command) arrive as errors with oclif.exit
          const e = err as Error & { oclif?: { exit?: number } };
          if (e?.oclif?.exit !== undefined) {
            process.exitCode = e.oclif.exit;
          } else {
            process.stderr.write(`factory: internal error: ${e?.message ?? String(err)}\n`);
            process.exitCode = 1;
          }
        }
      });
      code = typeof process.exitCode === 'number' ? process.exitCode : Number(process.exitCode ?? 0) || 0;
    } catch (err) {
      sink.write('stderr', `factory: control host: cannot run the command in ${run.cwd}: ${(err as Error).message}\n`);
      code = 1;
    } finally {
      this.busy = '';
      process.argv = argv;
      process.stdout.isTTY = tty.out;
      process.stderr.isTTY = tty.err;
      process.exitCode = undefined;
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      process.chdir(cwd);
    }
    this.served++;
    this.opts.log?.(`served ${run.id.replace(/:/g, ' ')} ${run.argv.join(' ')} → exit ${code} in ${Date.now() - started} ms`);
    return code;
  }
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** HostHealth is what GET /v1/health answers. */
export interface HostHealth {
  pid: number;
  stateDir: string;
  socket: string;
  startedAt: string;
  served: number;
  agents: number;
  reconcileIntervalMs: number;
  reconcilePasses: number;
}

/** health asks the control host on a socket who it is; rejects when nothing answers within timeoutMs. */
export function health(socket: string, timeoutMs = 2000): Promise<HostHealth> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: '/v1/health', method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as HostHealth);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
