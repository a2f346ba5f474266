/**
 * ExecutorClient: the control side of the executor protocol over any Transport. Every call has a
 * timeout; when the executor ends or the pipe breaks, every pending call fails with an AgentError
 * naming the agent and carrying the end of the executor's stderr.
 */
import { AgentError, FactoryError } from '../errors.js';
import { encode, readMessages } from '../protocol/codec.js';
import {
  PROTOCOL_VERSION,
  type AgentRegistration,
  type ImageInfo,
  type ImageLoadResult,
  type CallName,
  type Message,
  type Request,
  type RequestBody,
  type ResultOf,
  type TaskRunSpec,
  type TaskStatus,
} from '../protocol/messages.js';
import type { Transport, TransportChannel } from './transport.js';
import type { VmAction, VmActionResult, VmImageInfo, VmImageManifest } from '../protocol/vm.js';

/** ConnectOptions configures ExecutorClient.connect. */
export interface ConnectOptions {
  /** agent names the agent in errors (defaults to the transport's agent). */
  agent?: string;
  /** workDir is the executor's folder on the agent (task markers, logs). */
  workDir: string;
  /** timeoutMs bounds the handshake and is the default for every call (default 10000). */
  timeoutMs?: number;
  /** heartbeatMs asks the executor for this heartbeat period. */
  heartbeatMs?: number;
  /** stateId is the control side's state id, sent at hello: the tasks this session starts carry it. */
  stateId?: string;
}

/** Heartbeat is one heartbeat message from the executor. */
export type Heartbeat = Extract<Message, { type: 'heartbeat' }>;

/** LogsRequestOptions selects what logs() streams. */
export interface LogsRequestOptions {
  stream?: 'stdout' | 'stderr' | 'both';
  follow?: boolean;
  tail?: number;
  /** timeoutMs bounds a non-follow logs call (default: the client's timeout). */
  timeoutMs?: number;
}

interface Pending {
  resolve: (msg: Message) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
  onLog?: (stream: 'stdout' | 'stderr', data: string) => void;
  what: string;
}

const STDERR_TAIL = 4096;

/** ExecutorClient talks to one executor over one transport channel. */
export class ExecutorClient {
  /**
   * fencingEpoch, when set, gives the leadership epoch every request of this process carries (a
   * control host on etcd sets it while it leads; executors refuse older epochs). Unset: no epoch sent.
   */
  static fencingEpoch: (() => number | undefined) | undefined;

  /** clockOffsetMs is the agent's clock minus this process's, as measured at hello (0 when the executor did not say). */
  clockOffsetMs = 0;
  /** registration is what the executor reported on hello (resources, attributes, adopted tasks). */
  registration!: AgentRegistration;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly heartbeatListeners = new Set<(hb: Heartbeat) => void>();
  private stderrTail = '';
  private dead?: AgentError;
  private closing = false;

  private constructor(
    /** agent is the agent's name, used in every error. */
    readonly agent: string,
    private readonly channel: TransportChannel,
    private readonly timeoutMs: number,
  ) {
    channel.stderr.on('data', (chunk: Buffer | string) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_TAIL);
    });
    channel.stderr.on('error', () => undefined);
    channel.stdout.on('error', (err) => this.die(`executor output broke: ${err.message}`));
    channel.stdin.on('error', (err) => this.die(`cannot write to the executor: ${err.message}`));
    readMessages<Message>(channel.stdout, {
      onMessage: (m) => this.dispatch(m),
      onError: (err, id) => {
        if (id !== undefined && this.pending.has(id)) this.settle(id, undefined, new AgentError(this.agent, err.message, { code: err.code }));
        else process.stderr.write(`agent ${this.agent}: ${err.message}\n`);
      },
      onEnd: () => this.die('executor closed its output'),
    });
    void channel.exited.then((e) => this.die(`executor exited (${e.signal ? `signal ${e.signal}` : `code ${e.code}`})`));
  }

  /** connect opens the transport, sends hello and resolves once the executor registered. */
  static async connect(transport: Transport, opts: ConnectOptions): Promise<ExecutorClient> {
    const agent = opts.agent ?? transport.agent;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const channel = await transport.open();
    const client = new ExecutorClient(agent, channel, timeoutMs);
    try {
      const msg = await client.request(
        {
          type: 'hello',
          agent,
          workDir: opts.workDir,
          ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
          ...(opts.stateId !== undefined ? { state: opts.stateId } : {}),
        },
        timeoutMs,
        'hello',
      );
      if (msg.type !== 'register') throw new AgentError(agent, `expected register after hello, got ${msg.type}`, { code: 'E_PROTOCOL' });
      if (msg.agent.protocol !== PROTOCOL_VERSION) {
        throw new AgentError(agent, `executor speaks protocol ${msg.agent.protocol}, this factory speaks ${PROTOCOL_VERSION}`, { code: 'E_PROTOCOL' });
      }
      client.registration = msg.agent;
      // the register was sent right after its clock was read: the one-way delay is the error, and it
      // makes deadlines on the agent's clock a little earlier than on ours, never later
      if (typeof msg.agent.clock === 'number') client.clockOffsetMs = msg.agent.clock - Date.now();
      return client;
    } catch (err) {
      await client.close().catch(() => undefined);
      throw err;
    }
  }

  private stderrHint(): string {
    const t = this.stderrTail.trim();
    if (!t) return '';
    const lines = t.split('\n').slice(-5).join('\n  ');
    return `; executor stderr:\n  ${lines}`;
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.dead = new AgentError(this.agent, `${reason}${this.closing ? '' : this.stderrHint()}`, { code: 'E_AGENT_GONE' });
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, this.dead);
  }

  private settle(id: number, msg: Message | undefined, err?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (err) p.reject(err);
    else if (msg) p.resolve(msg);
  }

  private dispatch(m: Message): void {
    if (m.type === 'heartbeat') {
      for (const cb of this.heartbeatListeners) {
        try {
          cb(m);
        } catch (err) {
          process.stderr.write(`agent ${this.agent}: heartbeat listener failed: ${(err as Error).message}\n`);
        }
      }
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'log') {
      p.onLog?.(m.stream, m.data);
      return;
    }
    if (m.type === 'result' && !m.ok) {
      this.settle(m.id, undefined, new AgentError(this.agent, m.error.message, { code: m.error.code }));
      return;
    }
    this.settle(m.id, m);
  }

  private request(
    body: RequestBody,
    timeoutMs: number | undefined,
    what: string,
    onLog?: Pending['onLog'],
    onId?: (id: number) => void,
  ): Promise<Message> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closing) return Promise.reject(new AgentError(this.agent, `${what}: client is closed`, { code: 'E_AGENT_GONE' }));
    const id = this.nextId++;
    return new Promise<Message>((resolve, reject) => {
      const p: Pending = { resolve, reject, onLog, what };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.settle(id, undefined, new AgentError(this.agent, `${what}: no answer from the executor within ${timeoutMs}ms`, { code: 'E_TIMEOUT' }));
        }, timeoutMs);
      }
      this.pending.set(id, p);
      onId?.(id);
      try {
        const epoch = ExecutorClient.fencingEpoch?.();
        this.channel.stdin.write(encode({ v: PROTOCOL_VERSION, id, ...(epoch !== undefined ? { epoch } : {}), ...body } as Request), (err) => {
          if (err) this.die(`cannot write to the executor: ${err.message}`);
        });
      } catch (err) {
        this.die(`cannot write to the executor: ${(err as Error).message}`);
      }
    });
  }

  /** call sends one call and returns what its result carries, typed by the protocol map (Calls). */
  private async call<K extends CallName>(body: RequestBody<K>, timeoutMs: number | undefined, what: string): Promise<ResultOf<K>> {
    const msg = await this.request(body as RequestBody, timeoutMs ?? this.timeoutMs, what);
    if (msg.type !== 'result' || !msg.ok) throw new AgentError(this.agent, `${what}: unexpected ${msg.type} message`, { code: 'E_PROTOCOL' });
    return msg.data as ResultOf<K>;
  }

  /** run starts (or adopts) a task and returns its status; a start failure is a status with state failed. */
  run(spec: TaskRunSpec, timeoutMs?: number): Promise<TaskStatus> {
    return this.call({ type: 'run', spec }, timeoutMs ?? Math.max(this.timeoutMs, 30_000), `run ${spec.task}`);
  }

  /** stop stops a task (SIGTERM, graceMs, SIGKILL); remove (default true) deletes its folder and logs. */
  stop(task: string, opts: { graceMs?: number; remove?: boolean; timeoutMs?: number } = {}): Promise<TaskStatus> {
    // The call may legitimately take the grace period plus the SIGKILL wait.
    const timeout = opts.timeoutMs ?? this.timeoutMs + (opts.graceMs ?? 10_000) + 10_000;
    return this.call(
      {
        type: 'stop',
        task,
        ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}),
        ...(opts.remove !== undefined ? { remove: opts.remove } : {}),
      },
      timeout,
      `stop ${task}`,
    );
  }

  /** vmAction runs a power action (start, stop, reboot, force-off) or makes an image of one VM (libvirt driver). */
  vmAction(task: string, action: VmAction, opts: { imageName?: string; timeoutMs?: number } = {}): Promise<VmActionResult> {
    const wait = opts.timeoutMs ?? 30_000;
    return this.call(
      { type: 'vm-action', task, action, ...(opts.imageName !== undefined ? { imageName: opts.imageName } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) },
      // a stop waits for the guest, then forces it off; an image copies a whole disk
      action === 'image' ? 60 * 60_000 : this.timeoutMs + wait + 15_000,
      `vm ${action} ${task}`,
    );
  }

  /** vmImageHas tells whether the agent's VM image store holds the image id. */
  async vmImageHas(image: string): Promise<boolean> {
    return (await this.call({ type: 'vm-image-has', image }, undefined, `vm image ${image.slice(0, 12)}`)).present;
  }

  /** vmImagePut sends one base64 chunk of one file of a VM image upload. */
  vmImagePut(image: string, file: string, offset: number, data: string): Promise<{ received: number }> {
    return this.call({ type: 'vm-image-put', image, file, offset, data }, Math.max(this.timeoutMs, 60_000), `vm image upload ${image.slice(0, 12)} ${file}`);
  }

  /** vmImageCommit makes the agent verify the uploaded files against the manifest and name the image. */
  vmImageCommit(image: string, name: string, manifest: VmImageManifest): Promise<{ id: string; name: string }> {
    return this.call({ type: 'vm-image-commit', image, name, manifest }, Math.max(this.timeoutMs, 10 * 60_000), `vm image commit ${name}`);
  }

  /** vmImages lists the agent's VM image store. */
  vmImages(): Promise<VmImageInfo[]> {
    return this.call({ type: 'vm-images' }, undefined, 'vm images');
  }

  /** inspect lists every task the executor finds on its host. */
  inspect(timeoutMs?: number): Promise<TaskStatus[]> {
    return this.call({ type: 'inspect' }, timeoutMs, 'inspect');
  }

  /** imageInspect asks the agent's container engine whether it has an image, and its id. */
  imageInspect(image: string, timeoutMs?: number): Promise<ImageInfo> {
    return this.call({ type: 'image-inspect', image }, timeoutMs, `image-inspect ${image}`);
  }

  /** imageLoad sends one chunk of an image archive; the chunk with done loads and verifies it (allow time for that). */
  imageLoad(chunk: Omit<RequestBody<'image-load'>, 'type'>, timeoutMs?: number): Promise<ImageLoadResult> {
    return this.call({ type: 'image-load', ...chunk }, timeoutMs ?? (chunk.done ? Math.max(this.timeoutMs, 300_000) : this.timeoutMs), `image-load ${chunk.image}`);
  }

  /**
   * logs streams a task's output to onData. Without follow it resolves after the existing output;
   * with follow it keeps streaming until the signal aborts (then cancels on the executor and resolves).
   */
  async logs(
    task: string,
    opts: LogsRequestOptions,
    onData: (stream: 'stdout' | 'stderr', chunk: string) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const follow = opts.follow === true;
    if (signal?.aborted) return;
    let reqId: number | undefined;
    const onAbort = () => {
      if (reqId === undefined || this.dead) return;
      this.call({ type: 'cancel', target: reqId }, undefined, `cancel logs ${task}`).catch(() => undefined);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.request(
        { type: 'logs', task, stream: opts.stream ?? 'both', follow, ...(opts.tail !== undefined ? { tail: opts.tail } : {}) },
        follow ? undefined : (opts.timeoutMs ?? this.timeoutMs),
        `logs ${task}`,
        onData,
        (id) => {
          reqId = id;
        },
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** onHeartbeat registers a heartbeat listener and returns its unsubscribe function. */
  onHeartbeat(cb: (hb: Heartbeat) => void): () => void {
    this.heartbeatListeners.add(cb);
    return () => {
      this.heartbeatListeners.delete(cb);
    };
  }

  /** abandon declares the executor gone (e.g. silent past its heartbeats): pending calls fail with reason. */
  abandon(reason: string): void {
    this.die(reason);
    this.channel.close().catch(() => undefined);
  }

  /** closed is true once the executor is gone or close() was called. */
  get closed(): boolean {
    return this.closing || this.dead !== undefined;
  }

  /** close ends the session: the executor exits, the tasks it started keep running. Pending calls fail. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const id of [...this.pending.keys()]) {
      this.settle(id, undefined, new AgentError(this.agent, `${this.pending.get(id)?.what ?? 'call'}: client closed`, { code: 'E_AGENT_GONE' }));
    }
    try {
      await this.channel.close();
    } catch (err) {
      if (!(err instanceof FactoryError)) throw new AgentError(this.agent, `close: ${(err as Error).message}`, { cause: err });
      throw err;
    }
  }
}
