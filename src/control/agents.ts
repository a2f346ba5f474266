/**
 * AgentPool connects to the inventory's agents in parallel (bounded), each with a timeout, so that
 * one slow or dead agent never blocks the others. A failed agent is recorded with its error.
 */
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { AgentError, FactoryError } from '../errors.js';
import type { AgentSpec, InventorySpec } from '../spec/model.js';
import type { AgentRegistration } from '../protocol/messages.js';
import { ExecutorClient } from '../transport/client.js';
import { LocalTransport } from '../transport/local.js';
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
  /** onProgress is told about each agent as it connects or fails. */
  onProgress?: (agent: string, event: 'connected' | 'failed', detail?: string) => void;
}

/** agentWorkDir is where an agent's executor keeps task folders. */
export function agentWorkDir(spec: AgentSpec, stateDir: string): string {
  if (spec.workDir) return spec.workDir.replace(/^~(?=$|\/)/, os.homedir());
  if (spec.transport.kind === 'local') return path.join(path.resolve(stateDir), 'agents', spec.name);
  return '.factory/agent';
}

/** transportFor returns the transport that reaches an agent. */
export function transportFor(spec: AgentSpec): Transport {
  if (spec.transport.kind === 'local') return new LocalTransport(spec.name);
  throw new AgentError(spec.name, 'the ssh transport is not available in this version of factory', {
    code: 'E_TRANSPORT_UNSUPPORTED',
    hint: 'use `local: true` agents for now',
  });
}

/** AgentPool holds the connections of one command run; close() ends them (tasks keep running). */
export class AgentPool {
  readonly connected = new Map<string, ConnectedAgent>();
  readonly failed = new Map<string, FailedAgent>();

  private constructor(private readonly opts: AgentPoolOptions) {}

  /** connect reaches every given agent in parallel and returns the pool. */
  static async connect(agents: AgentSpec[], opts: AgentPoolOptions): Promise<AgentPool> {
    const pool = new AgentPool(opts);
    const limit = pLimit(opts.concurrency ?? 16);
    await Promise.all(agents.map((a) => limit(() => pool.connectOne(a))));
    return pool;
  }

  private async connectOne(spec: AgentSpec): Promise<void> {
    try {
      const client = await ExecutorClient.connect(transportFor(spec), {
        agent: spec.name,
        workDir: agentWorkDir(spec, this.opts.stateDir),
        timeoutMs: this.opts.timeoutMs ?? 15_000,
      });
      this.connected.set(spec.name, { spec, client, registration: client.registration });
      this.opts.onProgress?.(spec.name, 'connected');
    } catch (err) {
      const message = err instanceof AgentError ? err.message.replace(/^agent [^:]+: /, '') : err instanceof FactoryError ? err.message : String((err as Error)?.message ?? err);
      this.failed.set(spec.name, { spec, error: message });
      this.opts.onProgress?.(spec.name, 'failed', message);
    }
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
