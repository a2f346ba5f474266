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
import { detectLimits, discover, EXECUTOR_VERSION } from './discovery.js';
import type { Driver } from './drivers/driver.js';
import { ProcessDriver } from './drivers/process.js';
import { LibvirtDriver } from './drivers/libvirt.js';
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
  private drivers = new Map<string, Driver>();
  private workDir?: string;
  private heartbeat?: NodeJS.Timeout;
  private seq = 0;
  private readonly streams = new Map<number, AbortController>();
  private closed = false;
  /** helloing is the hello being handled; later requests wait for it so they see its workDir. */
  private helloing?: Promise<void>;
  /** images receives `factory image push` uploads; set when the docker driver is available. */
  private images?: ImageUploads;
  private dockerImages?: import('./drivers/docker.js').DockerDriver;

  /** vms is the libvirt driver when libvirt answered on hello (VM actions and the VM image store). */
  private vms?: LibvirtDriver;
  /** state is the control side's state id from hello: the tasks this session starts carry it. */
  private state?: string;

  constructor(private readonly io: ExecutorIO) {}

  private requireVms(): LibvirtDriver {
    if (!this.vms) throw new FactoryError('libvirt is not available on this agent (no answer at qemu:///system, or @unraid/libvirt is not installed)', { code: 'E_DRIVER' });
    return this.vms;
  }

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

  private requireDocker(): import('./drivers/docker.js').DockerDriver {
    if (!this.dockerImages) throw new FactoryError('docker is not available on this agent (no engine answered at FACTORY_DOCKER_HOST / DOCKER_HOST / /var/run/docker.sock)', { code: 'E_DRIVER' });
    return this.dockerImages;
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
      if (!(await this.vms?.status(req.task))) {
        const foreign = await this.foreignTask(req.task);
        if (foreign) throw foreign;
      }
      return this.requireVms().action(req.task, req.action, { imageName: req.imageName, timeoutMs: req.timeoutMs });
    },
    'vm-image-has': async (req) => {
      this.requireHello();
      return { present: this.requireVms().images.has(req.image) };
    },
    'vm-image-put': async (req) => {
      this.requireHello();
      return this.requireVms().imagePut(req.image, req.file, req.offset, req.data);
    },
    'vm-image-commit': async (req) => {
      this.requireHello();
      return this.requireVms().imageCommit(req.image, req.name, req.manifest);
    },
    'vm-images': async () => {
      this.requireHello();
      return this.requireVms().imageList();
    },
    'image-inspect': async (req) => {
      this.requireHello();
      return this.requireDocker().imageInfo(req.image);
    },
    'image-load': async (req) => {
      this.requireHello();
      this.requireDocker();
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
    const log = (m: string) => this.io.log(m);
    // discovery and the libvirt probe wait on different things: ask both at once
    const [found, vms] = await Promise.all([discover(workDir), this.vms ? Promise.resolve(this.vms) : LibvirtDriver.open({ workDir, limits: detectLimits(), log, state })]);
    this.workDir = workDir;
    this.state = state;
    this.drivers.set('process', new ProcessDriver({ workDir, limits: found.limits, log, state }));
    this.vms = vms;
    this.vms?.setState(state);
    if (this.vms) {
      this.drivers.set('libvirt', this.vms);
      if (!found.drivers.includes('libvirt')) found.drivers.push('libvirt');
    }
    if (found.drivers.includes('docker')) {
      // Loaded only when an engine answered: dockerode is not needed on agents without docker.
      try {
        const { DockerDriver } = await import('./drivers/docker.js');
        const docker = await DockerDriver.create({ workDir, limits: found.limits, log, agent: typeof req.agent === 'string' ? req.agent : undefined, state });
        this.drivers.set('docker', docker);
        this.dockerImages = docker;
        this.images = new ImageUploads(workDir, docker);
      } catch (err) {
        log(`executor: a docker engine answers but the docker driver cannot load: ${(err as Error).message}`);
        found.drivers = found.drivers.filter((d) => d !== 'docker');
      }
    }
    const registration: AgentRegistration = {
      executorVersion: EXECUTOR_VERSION,
      protocol: PROTOCOL_VERSION,
      hostname: found.hostname,
      resources: found.resources,
      attributes: found.attributes,
      drivers: found.drivers,
      limits: found.limits,
      workDir,
      tasks: await this.allTasks(),
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
    void this.vms?.close();
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
