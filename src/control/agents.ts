/**
 * AgentPool connects to the inventory's agents in parallel (bounded), each with a timeout, so that
 * one slow or dead agent never blocks the others. A failed agent is recorded with its error.
 */
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { AgentError, FactoryError } from '../errors.js';
import type { AgentSpec, InventorySettings, InventorySpec } from '../spec/model.js';
import { DEFAULT_HEARTBEAT_MS, type AgentRegistration } from '../protocol/messages.js';
import { ExecutorClient } from '../transport/client.js';
import { InProcessTransport } from '../transport/in-process.js';
import { LocalTransport } from '../transport/local.js';
import { SshTransport } from '../transport/ssh/index.js';
import type { Transport } from '../transport/transport.js';

/** ConnectedAgent is an agent we reached: its client and what it registered. */
export interface ConnectedAgent {
  spec: AgentSpec;
  client: ExecutorClient;
  registration: AgentRegistration;
}

/** FailedAgent is an agent we could not reach, with why. */
export interface FailedAgent {
  spec: AgentSpec;
  error: string;
}

/** AgentPoolOptions tunes fan-out and timeouts. */
export interface AgentPoolOptions {
  stateDir: string;
  /** stateId is our state's id, sent at hello: the tasks we start carry it, others' are foreign to us. */
  stateId: string;
  /** concurrency bounds parallel connections (default 16). */
  concurrency?: number;
  /** timeoutMs bounds each connect + hello (default 15 s). */
  timeoutMs?: number;
  /** settings are the inventory's connection settings (timeouts, heartbeats, host keys). */
  settings?: InventorySettings;
  /** onProgress is told about each agent as it connects, fails, or goes silent (lost). */
  onProgress?: (agent: string, event: 'connected' | 'failed' | 'lost', detail?: string) => void;
}

/** DEFAULT_LOST_AFTER is how many heartbeat periods of silence make an agent lost. */
export const DEFAULT_LOST_AFTER = 3;
/** MIN_NODE_MAJOR is the oldest Node major version the executor runs on. */
export const MIN_NODE_MAJOR = 20;

/** agentWorkDir is where an agent's executor keeps task folders. */
export function agentWorkDir(spec: AgentSpec, stateDir: string): string {
  if (spec.workDir) return spec.workDir.replace(/^~(?=$|\/)/, os.homedir());
  if (spec.transport.kind === 'local') return path.join(path.resolve(stateDir), 'agents', spec.name);
  // relative to the SSH user's home; per agent, so agents sharing a host (or a home) never collide
  return `.factory/agents/${spec.name}`;
}

/**
 * transportFor returns the transport that reaches an agent: a local agent's executor runs in this
 * process (InProcessTransport), or as a child process when FACTORY_LOCAL_EXECUTOR=child.
 */
export function transportFor(spec: AgentSpec, settings: InventorySettings = {}, env: NodeJS.ProcessEnv = process.env): Transport {
  const t = spec.transport;
  if (t.kind === 'local') return env.FACTORY_LOCAL_EXECUTOR === 'child' ? new LocalTransport(spec.name) : new InProcessTransport(spec.name);
  return new SshTransport(spec.name, {
    host: t.host,
    ...(t.port !== undefined ? { port: t.port } : {}),
    ...(t.user !== undefined ? { user: t.user } : {}),
    ...(t.identityFile !== undefined ? { identityFile: t.identityFile } : {}),
    ...(t.nodePath !== undefined ? { nodePath: t.nodePath } : {}),
    ...((t.knownHostsFile ?? settings.knownHostsFile) !== undefined ? { knownHostsFile: t.knownHostsFile ?? settings.knownHostsFile } : {}),
    ...((t.hostKeyPolicy ?? settings.hostKeyPolicy) !== undefined ? { hostKeyPolicy: t.hostKeyPolicy ?? settings.hostKeyPolicy } : {}),
    ...(settings.connectTimeoutMs !== undefined ? { connectTimeoutMs: settings.connectTimeoutMs } : {}),
  });
}

/** nodeTooOld returns why a registration's Node version is too old for the executor, if it is. */
export function nodeTooOld(reg: AgentRegistration): string | undefined {
  const v = reg.attributes.node;
  const major = Number(/^v?(\d+)/.exec(v ?? '')?.[1]);
  if (!v || !Number.isFinite(major)) return undefined;
  return major < MIN_NODE_MAJOR ? `Node ${v} on the agent is too old: factory's executor needs Node >= ${MIN_NODE_MAJOR}` : undefined;
}

/** AgentPool holds the connections of one command run; close() ends them (tasks keep running). */
export class AgentPool {
  readonly connected = new Map<string, ConnectedAgent>();
  readonly failed = new Map<string, FailedAgent>();

  /**
   * warm, when set (by `factory control serve`), keeps executor sessions open between commands:
   * connect() borrows them from it and close() leaves them open.
   */
  static warm: WarmAgents | undefined;

  /** lent is true for a pool whose sessions belong to AgentPool.warm. */
  private lent = false;
  /** watchers stop this pool's heartbeat watches (a lent session is watched by the pool using it). */
  private readonly watchers: (() => void)[] = [];

  private constructor(private readonly opts: AgentPoolOptions) {}

  /** stateId is the id of the state this pool works for (observe tells our tasks from foreign ones with it). */
  get stateId(): string {
    return this.opts.stateId;
  }

  /** connect reaches every given agent in parallel and returns the pool (borrowing warm sessions when a control host keeps them). */
  static async connect(agents: AgentSpec[], opts: AgentPoolOptions): Promise<AgentPool> {
    if (AgentPool.warm) return AgentPool.warm.lend(agents, opts);
    const pool = new AgentPool(opts);
    const limit = pLimit(opts.concurrency ?? opts.settings?.concurrency ?? 32);
    await Promise.all(agents.map((a) => limit(() => pool.connectOne(a))));
    return pool;
  }

  /** lentPool is an empty pool whose sessions WarmAgents fills and keeps. */
  static lentPool(opts: AgentPoolOptions): AgentPool {
    const pool = new AgentPool(opts);
    pool.lent = true;
    return pool;
  }

  /** connectOne starts a session with one agent; on failure the agent goes to `failed` with why. */
  async connectOne(spec: AgentSpec): Promise<void> {
    const settings = this.opts.settings ?? {};
    const heartbeatMs = settings.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    try {
      const client = await ExecutorClient.connect(transportFor(spec, settings), {
        agent: spec.name,
        workDir: agentWorkDir(spec, this.opts.stateDir),
        timeoutMs: this.opts.timeoutMs ?? settings.callTimeoutMs ?? 15_000,
        heartbeatMs,
        stateId: this.opts.stateId,
      });
      const old = nodeTooOld(client.registration);
      if (old) {
        await client.close().catch(() => undefined);
        throw new AgentError(spec.name, old, { code: 'E_NODE_OLD', hint: `install Node >= ${MIN_NODE_MAJOR} on the agent or point ssh.nodePath at one` });
      }
      this.connected.set(spec.name, { spec, client, registration: client.registration });
      this.watch(spec, client);
      this.opts.onProgress?.(spec.name, 'connected');
    } catch (err) {
      const message = err instanceof AgentError ? err.message.replace(/^agent [^:]+: /, '') : err instanceof FactoryError ? err.message : String((err as Error)?.message ?? err);
      this.failed.set(spec.name, { spec, error: message });
      this.opts.onProgress?.(spec.name, 'failed', message);
    }
  }

  /**
   * watch marks a connected agent lost when its executor stays silent for lostAfter heartbeat
   * periods (the inventory's settings): its pending calls fail at once, and it moves from connected
   * to failed in this pool. The watch ends when the session closes or this pool is closed.
   */
  watch(spec: AgentSpec, client: ExecutorClient): void {
    const settings = this.opts.settings ?? {};
    const heartbeatMs = settings.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const lostAfter = settings.lostAfter ?? DEFAULT_LOST_AFTER;
    let last = Date.now();
    const off = client.onHeartbeat(() => {
      last = Date.now();
    });
    const limit = heartbeatMs * lostAfter;
    const timer = setInterval(() => {
      if (client.closed) {
        clearInterval(timer);
        off();
        return;
      }
      if (Date.now() - last <= limit) return;
      clearInterval(timer);
      off();
      const why = `lost: no heartbeat for ${Math.round((Date.now() - last) / 1000)}s (${lostAfter} × ${heartbeatMs}ms)`;
      client.abandon(why);
      this.connected.delete(spec.name);
      this.failed.set(spec.name, { spec, error: why });
      this.opts.onProgress?.(spec.name, 'lost', why);
    }, Math.max(50, Math.min(1000, heartbeatMs / 2)));
    timer.unref();
    this.watchers.push(() => {
      clearInterval(timer);
      off();
    });
  }

  /** close ends every executor session (a lent pool's stay open for the next command); the tasks they started keep running. */
  async close(): Promise<void> {
    for (const stop of this.watchers.splice(0)) stop();
    if (!this.lent) await Promise.all([...this.connected.values()].map((c) => c.client.close().catch(() => undefined)));
    this.connected.clear();
  }
}

/** WARM_MAX_AGE_MS is how long a warm session serves before it is renewed (a new hello re-runs discovery). */
export const WARM_MAX_AGE_MS = 5 * 60_000;

/**
 * WarmAgents keeps one executor session per agent open between commands, for the control host.
 * Each lend() checks every session it hands out: a closed or lost session, one opened for another
 * state dir, agent definition or settings, or one older than maxAgeMs is replaced by a new
 * connection; a kept one is asked what runs (`inspect`) so the command sees the agent as it is now,
 * exactly as a fresh hello would have told it.
 */
export class WarmAgents {
  private readonly sessions = new Map<string, { key: string; conn: ConnectedAgent; at: number; used: number }>();
  /** lending holds each agent's lend in progress (settled), which the next lend of that agent waits for. */
  private readonly lending = new Map<string, Promise<void>>();

  constructor(private readonly maxAgeMs = WARM_MAX_AGE_MS) {}

  /** size is the number of open sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * lend returns a pool of the given agents over warm sessions, opening the missing ones. Sessions
   * no command has used for maxAgeMs (an agent taken out of the inventory, say) are closed.
   */
  async lend(agents: AgentSpec[], opts: AgentPoolOptions): Promise<AgentPool> {
    const pool = AgentPool.lentPool(opts);
    const limit = pLimit(opts.concurrency ?? opts.settings?.concurrency ?? 32);
    await Promise.all(agents.map((spec) => limit(() => this.lendOne(pool, spec, opts))));
    const now = Date.now();
    const idle = [...this.sessions].filter(([name, s]) => !pool.connected.has(name) && now - s.used > this.maxAgeMs);
    for (const [name] of idle) this.sessions.delete(name);
    await Promise.all(idle.map(([, s]) => s.conn.client.close().catch(() => undefined)));
    return pool;
  }

  /**
   * lendOne lends one agent's session, one lend at a time per agent: two commands (or two job runs'
   * starts) borrowing an agent that has no session yet would each open one, and the second would
   * replace the first in the map and leave it open for good (its executor child keeps the host alive).
   */
  private lendOne(pool: AgentPool, spec: AgentSpec, opts: AgentPoolOptions): Promise<void> {
    const next = (this.lending.get(spec.name) ?? Promise.resolve()).then(() => this.lendOneNow(pool, spec, opts));
    const settled = next.catch(() => undefined);
    this.lending.set(spec.name, settled);
    void settled.then(() => {
      if (this.lending.get(spec.name) === settled) this.lending.delete(spec.name);
    });
    return next;
  }

  private async lendOneNow(pool: AgentPool, spec: AgentSpec, opts: AgentPoolOptions): Promise<void> {
    const key = JSON.stringify([spec, path.resolve(opts.stateDir), opts.stateId, opts.settings ?? {}, opts.timeoutMs ?? null]);
    const held = this.sessions.get(spec.name);
    if (held) {
      const fresh = held.key === key && !held.conn.client.closed && Date.now() - held.at <= this.maxAgeMs;
      if (fresh) {
        try {
          held.conn.registration.tasks = await held.conn.client.inspect();
          held.used = Date.now();
          pool.connected.set(spec.name, held.conn);
          pool.watch(spec, held.conn.client); // a silence during this command shows in this command's pool
          opts.onProgress?.(spec.name, 'connected');
          return;
        } catch {
          /* gone since the last command: connect anew below */
        }
      }
      this.sessions.delete(spec.name);
      await held.conn.client.close().catch(() => undefined);
    }
    await pool.connectOne(spec);
    const conn = pool.connected.get(spec.name);
    if (conn) this.sessions.set(spec.name, { key, conn, at: Date.now(), used: Date.now() });
  }

  /** close ends every warm session; the tasks keep running. */
  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.conn.client.close().catch(() => undefined)));
  }
}

/** inventoryAgents lists the inventory's agents, optionally only the named ones. */
export function inventoryAgents(inv: InventorySpec, names?: Iterable<string>): AgentSpec[] {
  if (!names) return inv.agents;
  const want = new Set(names);
  return inv.agents.filter((a) => want.has(a.name));
}
