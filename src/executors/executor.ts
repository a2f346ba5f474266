#!/usr/bin/env node
/**
 * The executor program (`node dist/executors/executor.js`): speaks the executor protocol on
 * stdin/stdout — requests in, results/heartbeats/logs out — and runs tasks through its drivers.
 * Nothing but protocol lines is ever written to stdout; diagnostics go to stderr.
 *
 * It is stateless: on `hello` it reports the tasks it finds in its workDir (adoption), and when
 * stdin ends it exits while the tasks it started keep running.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FactoryError } from '../errors.js';
import { encode, readMessages } from '../protocol/codec.js';
import { DEFAULT_HEARTBEAT_MS, PROTOCOL_VERSION, type AgentRegistration, type CallName, type ErrorBody, type Message, type Request, type RequestOf, type ResultOf, type TaskStatus } from '../protocol/messages.js';
import { restoreDeferredEnv } from './deferred-env.js';
import { detectLimits, discoverHost, EXECUTOR_VERSION } from './discovery.js';
import { hasContainerImages, hasVmImages, hasVmPower, type Capability, type VmPower } from './drivers/capabilities.js';
import type { Driver, DriverContext } from './drivers/driver.js';
import { openDrivers, unavailableMessage } from './drivers/registry.js';
import { EpochFence } from './epoch-fence.js';
import { ImageUploads } from './images.js';
import { STATE_ID_RE } from '../state/state-id.js';

/** ExecutorIO is where an executor reads requests and writes messages (process stdio by default). */
export interface ExecutorIO {
  input: NodeJS.ReadableStream & import('node:stream').Readable;
  output: NodeJS.WritableStream;
  log: (msg: string) => void;
  /** exit is called once when the input ends or a shutdown was requested. */
  exit: (code: number) => void;
}

/** ANSWERED is what a handler returns when it sent its own answer. */
const ANSWERED = Symbol('answered');

function errorBody(err: unknown): ErrorBody {
  if (err instanceof FactoryError) return { code: err.code, message: err.message };
  const e = err as NodeJS.ErrnoException;
  return { code: e?.code ?? 'E_EXECUTOR', message: e?.message ?? String(err) };
}

/** Executor serves the protocol over one input/output pair. */
export class Executor {
  /** drivers are the drivers the last hello opened (drivers/registry.ts), by name, in the registry's order. */
  private drivers = new Map<string, Driver>();
  private workDir?: string;
  private heartbeat?: NodeJS.Timeout;
  private seq = 0;
  private readonly streams = new Map<number, AbortController>();
  private closed = false;
  /** helloing is the hello being handled; later requests wait for it so they see its workDir. */
  private helloing?: Promise<void>;
  /** images receives `factory image push` uploads; set when a driver with container images is open. */
  private images?: ImageUploads;
  /** state is the control side's state id from hello: the tasks this session starts carry it. */
  private state?: string;
  /** fence checks the calls' leadership epochs (set by hello). */
  private fence?: EpochFence;

  constructor(private readonly io: ExecutorIO) {}

  /** start begins reading requests. */
  start(): void {
    readMessages<Request>(this.io.input, {
      onMessage: (req) => void this.handle(req),
      onError: (err, id) => {
        this.io.log(`executor: ${err.message}`);
        if (id !== undefined) this.send({ v: PROTOCOL_VERSION, id, type: 'result', ok: false, error: { code: err.code, message: err.message } });
      },
      onEnd: () => this.close(0),
    });
    this.io.input.on('error', () => this.close(0));
  }

  private send(msg: Message): void {
    if (this.closed) return;
    try {
      this.io.output.write(encode(msg));
    } catch (err) {
      this.io.log(`executor: cannot write to stdout: ${(err as Error).message}`);
      this.close(1);
    }
  }

  private ok(id: number, data?: unknown): void {
    this.send({ v: PROTOCOL_VERSION, id, type: 'result', ok: true, ...(data === undefined ? {} : { data }) });
  }

  private fail(id: number, err: unknown): void {
    this.send({ v: PROTOCOL_VERSION, id, type: 'result', ok: false, error: errorBody(err) });
  }

  private driver(name: string): Driver {
    const d = this.drivers.get(name);
    if (!d) throw new FactoryError(`driver "${name}" is not available on this agent (have: ${[...this.drivers.keys()].join(', ') || 'none'})`, { code: 'E_DRIVER' });
    return d;
  }

  /** withCapability lists the open drivers that have a capability (drivers/capabilities.ts), in the registry's order. */
  private withCapability<D extends Driver>(has: (d: Driver) => d is D): D[] {
    return [...this.drivers.values()].filter(has);
  }

  /** capable is the first open driver with a capability; E_DRIVER, saying which driver is missing, when none is open. */
  private capable<D extends Driver>(has: (d: Driver) => d is D, capability: Capability): D {
    const d = this.withCapability(has)[0];
    if (!d) throw new FactoryError(unavailableMessage(capability), { code: 'E_DRIVER' });
    return d;
  }

  private requireHello(): void {
    if (!this.workDir) throw new FactoryError('protocol: send hello first', { code: 'E_PROTOCOL' });
  }

  private async allTasks(): Promise<TaskStatus[]> {
    const out: TaskStatus[] = [];
    for (const d of this.drivers.values()) out.push(...(await d.inspect()));
    return out;
  }

  private async findTask(task: string): Promise<Driver | undefined> {
    for (const d of this.drivers.values()) if (await d.status(task)) return d;
    return undefined;
  }

  /**
   * foreignTask is the error for a task id this session does not have while another state's task of
   * that id runs here (E_FOREIGN_TASK, naming that state); undefined when no other state has it.
   */
  private async foreignTask(task: string): Promise<FactoryError | undefined> {
    const other = (await this.allTasks()).find((t) => t.task === task && t.stateId !== undefined && t.stateId !== this.state);
    if (!other) return undefined;
    return new FactoryError(`task ${task} on this agent belongs to another factory state (${other.stateId}): it is listed, never stopped or touched from here`, {
      code: 'E_FOREIGN_TASK',
    });
  }

  /**
   * handlers answer the calls of the protocol map (Calls in src/protocol/messages.ts), one each: a
   * call without a handler does not compile. A handler returns what its result carries, or ANSWERED
   * when it answered itself (hello registers, logs streams, shutdown closes).
   */
  private readonly handlers: { [K in CallName]: (req: RequestOf<K>) => Promise<ResultOf<K> | typeof ANSWERED> } = {
    hello: async (req) => {
      const p = this.hello(req);
      this.helloing = p;
      await p;
      return ANSWERED;
    },
    run: async (req) => {
      this.requireHello();
      const spec = req.spec;
      if (!spec || typeof spec !== 'object') throw new FactoryError('run: missing spec', { code: 'E_BAD_REQUEST' });
      return this.driver(spec.driver).run(spec);
    },
    stop: async (req) => {
      this.requireHello();
      const d = (await this.findTask(req.task)) ?? this.driver('process');
      return d.stop(req.task, { graceMs: req.graceMs, remove: req.remove });
    },
    inspect: async () => {
      this.requireHello();
      return this.allTasks();
    },
    logs: async (req) => {
      this.requireHello();
      await this.logs(req);
      return ANSWERED;
    },
    cancel: async (req) => {
      const c = this.streams.get(req.target);
      c?.abort();
      return { cancelled: c !== undefined };
    },
    shutdown: async (req) => {
      this.ok(req.id);
      this.close(0);
      return ANSWERED;
    },
    'vm-action': async (req) => {
      this.requireHello();
      // the VM driver that has the task; else the first (it says the VM is not defined here)
      let owner: (Driver & VmPower) | undefined;
      for (const d of this.withCapability(hasVmPower)) {
        if (await d.status(req.task)) {
          owner = d;
          break;
        }
      }
      if (!owner) {
        const foreign = await this.foreignTask(req.task);
        if (foreign) throw foreign;
      }
      return (owner ?? this.capable(hasVmPower, 'vm-power')).action(req.task, req.action, { imageName: req.imageName, timeoutMs: req.timeoutMs });
    },
    'vm-image-has': async (req) => {
      this.requireHello();
      return { present: this.capable(hasVmImages, 'vm-images').imageHas(req.image) };
    },
    'vm-image-put': async (req) => {
      this.requireHello();
      return this.capable(hasVmImages, 'vm-images').imagePut(req.image, req.file, req.offset, req.data);
    },
    'vm-image-commit': async (req) => {
      this.requireHello();
      return this.capable(hasVmImages, 'vm-images').imageCommit(req.image, req.name, req.manifest);
    },
    'vm-images': async () => {
      this.requireHello();
      return this.capable(hasVmImages, 'vm-images').imageList();
    },
    'image-inspect': async (req) => {
      this.requireHello();
      return this.capable(hasContainerImages, 'container-images').imageInfo(req.image);
    },
    'image-load': async (req) => {
      this.requireHello();
      this.capable(hasContainerImages, 'container-images');
      return this.images!.receive(req);
    },
  };

  /** calls lists the calls this executor answers (the protocol map's, by construction). */
  get calls(): string[] {
    return Object.keys(this.handlers);
  }

  /** handle answers one request; it never throws. */
  async handle(req: Request): Promise<void> {
    const id = typeof req.id === 'number' ? req.id : -1;
    try {
      if (req.type !== 'hello' && this.helloing) await this.helloing.catch(() => undefined);
      // own properties only: a request type of "constructor" or "__proto__" is not a call
      if (typeof req.type !== 'string' || !Object.hasOwn(this.handlers, req.type)) {
        throw new FactoryError(`protocol: unknown request type ${JSON.stringify((req as { type: unknown }).type)}`, { code: 'E_PROTOCOL' });
      }
      if (req.epoch !== undefined && req.type !== 'hello') this.fence?.admit(req.epoch, req.type);
      const handler = this.handlers[req.type] as (r: Request) => Promise<unknown>;
      const out = await handler(req);
      if (out !== ANSWERED) this.ok(id, out);
    } catch (err) {
      this.fail(id, err);
    }
  }

  private async hello(req: Extract<Request, { type: 'hello' }>): Promise<void> {
    if (typeof req.workDir !== 'string' || req.workDir === '') throw new FactoryError('hello: missing workDir', { code: 'E_BAD_REQUEST' });
    if (req.state !== undefined && (typeof req.state !== 'string' || !STATE_ID_RE.test(req.state))) {
      throw new FactoryError(`hello: invalid state id ${JSON.stringify(req.state)}: expected st- and 12 hex digits (like st-0123456789ab)`, { code: 'E_BAD_REQUEST' });
    }
    const state = req.state;
    const workDir = path.resolve(req.workDir);
    try {
      fs.mkdirSync(path.join(workDir, 'tasks'), { recursive: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new FactoryError(`cannot create workDir ${workDir}: ${e.code === 'ENOSPC' ? 'no space left on device' : e.code === 'EACCES' ? 'permission denied' : e.message}`, {
        code: 'E_WORKDIR',
      });
    }
    const fence = new EpochFence(workDir, state, (m) => this.io.log(m));
    if (req.epoch !== undefined) fence.admit(req.epoch, 'hello');
    this.fence = fence;
    const ctx: DriverContext = { workDir, limits: detectLimits(), log: (m) => this.io.log(m), agent: typeof req.agent === 'string' ? req.agent : undefined, state };
    // discovery and the drivers' probes wait on different things (nvidia-smi, an engine, libvirtd): ask all at once
    const [found, drivers] = await Promise.all([discoverHost(workDir), openDrivers(ctx, this.drivers)]);
    this.workDir = workDir;
    this.state = state;
    this.drivers = drivers;
    const engine = this.withCapability(hasContainerImages)[0];
    this.images = engine ? new ImageUploads(workDir, engine) : undefined;
    const registration: AgentRegistration = {
      executorVersion: EXECUTOR_VERSION,
      protocol: PROTOCOL_VERSION,
      hostname: found.hostname,
      resources: found.resources,
      attributes: found.attributes,
      drivers: [...drivers.keys()],
      limits: found.limits,
      workDir,
      tasks: await this.allTasks(),
      clock: Date.now(),
    };
    this.send({ v: PROTOCOL_VERSION, id: req.id, type: 'register', agent: registration });
    const every = typeof req.heartbeatMs === 'number' && req.heartbeatMs > 0 ? Math.max(50, req.heartbeatMs) : DEFAULT_HEARTBEAT_MS;
    if (this.heartbeat) clearInterval(this.heartbeat);
    let busy = false;
    this.heartbeat = setInterval(() => {
      if (busy) return;
      busy = true;
      this.allTasks()
        .then((tasks) => this.send({ v: PROTOCOL_VERSION, type: 'heartbeat', seq: ++this.seq, at: new Date().toISOString(), tasks }))
        .catch((err) => this.io.log(`executor: heartbeat: ${(err as Error).message}`))
        .finally(() => {
          busy = false;
        });
    }, every);
  }

  private async logs(req: Extract<Request, { type: 'logs' }>): Promise<void> {
    const stream = req.stream ?? 'both';
    if (stream !== 'stdout' && stream !== 'stderr' && stream !== 'both') throw new FactoryError(`logs: bad stream ${JSON.stringify(stream)}`, { code: 'E_BAD_REQUEST' });
    const d = await this.findTask(req.task);
    if (!d) throw (await this.foreignTask(req.task)) ?? new FactoryError(`task ${req.task} not found`, { code: 'E_NOT_FOUND' });
    const ctl = new AbortController();
    this.streams.set(req.id, ctl);
    try {
      await d.logs(
        req.task,
        { stream, follow: req.follow === true, tail: typeof req.tail === 'number' ? req.tail : undefined },
        (s, data) => this.send({ v: PROTOCOL_VERSION, id: req.id, type: 'log', stream: s, data }),
        ctl.signal,
      );
      this.ok(req.id);
    } finally {
      this.streams.delete(req.id);
    }
  }

  /** close stops heartbeats and log streams and exits; tasks keep running. */
  close(code: number): void {
    if (this.closed) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of this.streams.values()) c.abort();
    for (const d of this.drivers.values()) void d.close?.();
    this.closed = true;
    this.io.exit(code);
  }
}

/** main runs the executor on the process's stdio. */
export function main(): void {
  restoreDeferredEnv(process.env);
  process.stdout.on('error', () => process.exit(0)); // broken pipe: the control side is gone
  process.on('SIGPIPE', () => undefined);
  const ex = new Executor({
    input: process.stdin,
    output: process.stdout,
    log: (m) => process.stderr.write(`${m}\n`),
    exit: (code) => {
      // Let pending writes drain, then leave; detached tasks are unaffected.
      setImmediate(() => process.exit(code));
    },
  });
  process.on('uncaughtException', (err) => {
    process.stderr.write(`executor: internal error: ${err.stack ?? err.message}\n`);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`executor: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  });
  ex.start();
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(fs.realpathSync(entry)).href) main();
