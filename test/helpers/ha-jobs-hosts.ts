/**
 * HaHosts starts, finds and kills the `factory control serve` hosts of one etcd state (the built
 * CLI, each with its own data dir, on TCP with TLS), for the HA trials: which one leads (from its
 * log), the client flags that reach them all, a host killed by its pid and started again on its
 * folder. test/e2e/ha-etcd.test.ts, ha-jobs.test.ts, ha-status.test.ts and bench/ha.ts use it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, waitFor } from './cli.js';

/** HaHost is one started host: its process, its folder, its log, and where it serves once up. */
export interface HaHost {
  /** slot is which of the hosts it is (its folder is host<slot>); a restarted host keeps its slot. */
  slot: number;
  child: ChildProcess;
  pid: number;
  dir: string;
  url?: string;
  fingerprint?: string;
  log: () => string;
}

/** HaHostsOptions are what every host is started with. */
export interface HaHostsOptions {
  /** dir holds the hosts' folders (host0, host1, …). */
  dir: string;
  /** location is the `--state etcd://…` URL. */
  location: string;
  inventory: string;
  leaseTtlS: number;
  reconcileS: number;
  env?: Record<string, string>;
}

const SERVING = /serving (https:\/\/127\.0\.0\.1:\d+) \(TLS certificate .*, SHA-256 fingerprint ([0-9A-F:]+)\)/;
const LEADING = /leading .* \(epoch (\d+)\)/;

/** HaHosts holds the hosts started on one etcd state. */
export class HaHosts {
  /** all are every host started, killed ones included (their logs stay readable). */
  readonly all: HaHost[] = [];

  constructor(private readonly o: HaHostsOptions) {}

  /** start starts host <slot> on its folder and waits until it serves on TCP. */
  async start(slot: number): Promise<HaHost> {
    const dir = path.join(this.o.dir, `host${slot}`);
    const args = ['control', 'serve', '--state', this.o.location, '--data-dir', dir, '--listen', '127.0.0.1:0', '--lease-ttl', String(this.o.leaseTtlS), '--reconcile-interval', String(this.o.reconcileS), '--inventory', this.o.inventory];
    const child = spawn(BIN, args, { cwd: this.o.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...this.o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const h: HaHost = { slot, child, pid: child.pid!, dir, log: () => out };
    this.all.push(h);
    if (!(await waitFor(() => SERVING.test(out) || !this.alive(h), 30_000, 50))) throw new Error(`host${slot} did not serve within 30 s: ${out}`);
    const m = SERVING.exec(out);
    if (!m) throw new Error(`host${slot} exited: ${out}`);
    h.url = m[1];
    h.fingerprint = m[2];
    return h;
  }

  /** alive says whether a host's process still runs. */
  alive(h: HaHost): boolean {
    return h.child.exitCode === null && h.child.signalCode === null;
  }

  /** live are the hosts still running. */
  get live(): HaHost[] {
    return this.all.filter((h) => this.alive(h));
  }

  /** epochOf is the epoch a host said it leads with (undefined: it never led). */
  epochOf(h: HaHost): number | undefined {
    const m = LEADING.exec(h.log());
    return m ? Number(m[1]) : undefined;
  }

  /** leader is the live host that leads (it said so), if one does. */
  leader(): HaHost | undefined {
    return this.live.find((h) => this.epochOf(h) !== undefined);
  }

  /** waitLeader waits up to timeoutMs for a live host to lead. */
  async waitLeader(timeoutMs: number): Promise<HaHost> {
    if (!(await waitFor(() => this.leader() !== undefined, timeoutMs, 20))) throw new Error(`no host leads:\n${this.live.map((h) => h.log()).join('\n----\n')}`);
    return this.leader()!;
  }

  /** kill sends a signal to a host by its pid and waits (up to 10 s) for it to exit. */
  async kill(h: HaHost, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive(h)) return;
    const gone = new Promise<void>((r) => h.child.once('exit', () => r()));
    process.kill(h.pid, signal);
    const t = setTimeout(() => this.alive(h) && process.kill(h.pid, 'SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }

  /** rootToken is the first root token file any started host wrote (killed ones' too: a token lives in the state). */
  rootToken(): string {
    const file = this.all.map((h) => path.join(h.dir, 'tokens', 'root')).find((f) => fs.existsSync(f));
    if (!file) throw new Error(`no host wrote a root token yet (${this.all.map((h) => h.dir).join(', ')})`);
    return file;
  }

  /** remote is the client flags that reach the hosts of list (default: every live one), in that order (the client follows the leader among them). */
  remote(list: HaHost[] = this.live): string[] {
    return ['--control', list.map((h) => h.url!).join(','), '--fingerprint', list.map((h) => h.fingerprint!).join(','), '--token-file', this.rootToken(), '--state', path.join(this.o.dir, 'nowhere')];
  }

  /** stop kills the followers, then stops the leader with SIGTERM (its last writes land), each by pid. */
  async stop(): Promise<void> {
    const leader = this.leader();
    await Promise.all(this.live.filter((h) => h !== leader).map((h) => this.kill(h)));
    if (leader) await this.kill(leader, 'SIGTERM');
  }
}
