/**
 * AgentPool connects to the inventory's agents in parallel (bounded), each with a timeout, so that
 * one slow or dead agent never blocks the others. A failed agent is recorded with its error.
 */
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { AgentError, FactoryError } from '../errors.js';
import type { AgentSpec, InventorySettings, InventorySpec } from '../spec/model.js';
import type { AgentRegistration } from '../protocol/messages.js';
import { ExecutorClient } from '../transport/client.js';
import { InProcessTransport } from '../transport/in-process.js';
import { LocalTransport } from '../transport/local.js';
import { SshTransport } from '../transport/ssh.js';
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
  /** concurrency bounds parallel connections (default 16). */
  concurrency?: number;
  /** timeoutMs bounds each connect + hello (default 15 s). */
  timeoutMs?: number;
  /** settings are the inventory's connection settings (timeouts, heartbeats, host keys). */
  settings?: InventorySettings;
  /** onProgress is told about each agent as it connects, fails, or goes silent (lost). */
  onProgress?: (agent: string, event: 'connected' | 'failed' | 'lost', detail?: string) => void;
}

/** DEFAULT_HEARTBEAT_MS is the heartbeat period asked of executors when the inventory sets none. */
export const DEFAULT_HEARTBEAT_MS = 5000;
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

  private constructor(private readonly opts: AgentPoolOptions) {}

  /** connect reaches every given agent in parallel and returns the pool. */
  static async connect(agents: AgentSpec[], opts: AgentPoolOptions): Promise<AgentPool> {
    const pool = new AgentPool(opts);
    const limit = pLimit(opts.concurrency ?? opts.settings?.concurrency ?? 32);
    await Promise.all(agents.map((a) => limit(() => pool.connectOne(a))));
    return pool;
  }

  private async connectOne(spec: AgentSpec): Promise<void> {
    const settings = this.opts.settings ?? {};
    const heartbeatMs = settings.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    try {
      const client = await ExecutorClient.connect(transportFor(spec, settings), {
        agent: spec.name,
        workDir: agentWorkDir(spec, this.opts.stateDir),
        timeoutMs: this.opts.timeoutMs ?? settings.callTimeoutMs ?? 15_000,
        heartbeatMs,
      });
      const old = nodeTooOld(client.registration);
      if (old) {
        await client.close().catch(() => undefined);
        throw new AgentError(spec.name, old, { code: 'E_NODE_OLD', hint: `install Node >= ${MIN_NODE_MAJOR} on the agent or point ssh.nodePath at one` });
      }
      this.connected.set(spec.name, { spec, client, registration: client.registration });
      this.watchHeartbeats(spec, client, heartbeatMs, settings.lostAfter ?? DEFAULT_LOST_AFTER);
      this.opts.onProgress?.(spec.name, 'connected');
    } catch (err) {
      const message = err instanceof AgentError ? err.message.replace(/^agent [^:]+: /, '') : err instanceof FactoryError ? err.message : String((err as Error)?.message ?? err);
      this.failed.set(spec.name, { spec, error: message });
      this.opts.onProgress?.(spec.name, 'failed', message);
    }
  }

  /**
   * watchHeartbeats marks a connected agent lost when its executor stays silent for lostAfter
   * heartbeat periods: its pending calls fail at once, and it moves from connected to failed.
   */
  private watchHeartbeats(spec: AgentSpec, client: ExecutorClient, heartbeatMs: number, lostAfter: number): void {
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
  }

  /** close ends every executor session; the tasks they started keep running. */
  async close(): Promise<void> {
    await Promise.all([...this.connected.values()].map((c) => c.client.close().catch(() => undefined)));
    this.connected.clear();
  }
}

/** inventoryAgents lists the inventory's agents, optionally only the named ones. */
export function inventoryAgents(inv: InventorySpec, names?: Iterable<string>): AgentSpec[] {
  if (!names) return inv.agents;
  const want = new Set(names);
  return inv.agents.filter((a) => want.has(a.name));
}
