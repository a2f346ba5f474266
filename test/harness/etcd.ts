/**
 * A private etcd cluster for tests and benchmarks: 1 or 3 members of Debian's `etcd-server` on
 * loopback, each with free client and peer ports and its own data directory under one temp folder
 * (fsync on, as in production), stopped or killed by pid. A killed member can be started again on
 * its data directory.
 *
 * Members may also serve clients on more loopback addresses (clientAddresses: 127.0.80.1, …, on the
 * same client port): give each client its own address, and one iptables DROP to that address's
 * client ports (cutClients) cuts that client off from etcd while every other one, and the members'
 * peer links, stay up. healClients, stop() and the end of the test process remove the rules, each
 * by its exact spec (never a flush).
 *
 * When etcd is not installed, startEtcd() returns a skip reason on a dev machine and throws when CI
 * is set: in CI a test that needs etcd fails, it never silently skips.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** findEtcd returns the etcd binary, or undefined when etcd-server is not installed. */
export function findEtcd(): string | undefined {
  for (const p of ['/usr/bin/etcd', '/usr/local/bin/etcd']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/**
 * etcdSkipReason says why etcd tests cannot run here, or undefined when they can. Under CI
 * (process.env.CI set) a missing etcd is a failure, not a skip: it throws.
 */
export function etcdSkipReason(): string | undefined {
  const reason = findEtcd() ? undefined : 'etcd not installed (apt-get install -y etcd-server)';
  if (reason && process.env.CI) throw new Error(`etcd tests cannot run in CI: ${reason}`);
  if (reason) process.stderr.write(`SKIPPING etcd tests: ${reason}\n`);
  return reason;
}

/** EtcdMember is one member of a test cluster. */
export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  /** endpoint is `127.0.0.1:<client port>`. */
  endpoint: string;
  dataDir: string;
  logFile: string;
  /** pid is the running process's id (0 while stopped). */
  pid: number;
}

/** EtcdClusterOptions configures startEtcd. */
export interface EtcdClusterOptions {
  /** members is 1 or 3 (default 1). */
  members?: number;
  /** maxTxnOps is etcd's --max-txn-ops (default 4096: a commit is one transaction, see src/state/README.md). */
  maxTxnOps?: number;
  /** readyTimeoutMs bounds the wait for every member to report healthy (default 20 s). */
  readyTimeoutMs?: number;
  /** extraArgs are more etcd flags for every member. */
  extraArgs?: string[];
  /**
   * clientAddresses are more loopback addresses (e.g. 127.0.80.1) on which every member also serves
   * clients, on its client port: endpointsOn(address) reaches the cluster through one of them only.
   */
  clientAddresses?: string[];
}

/** freePort asks the kernel for a free loopback port. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** memberHealthy asks a member's /health (true once it has a leader and can serve a quorum read). */
export function memberHealthy(endpoint: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${endpoint}/health`, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** EtcdCluster is a running test cluster. */
export class EtcdCluster {
  private readonly procs = new Map<number, ChildProcess>();
  /** cuts are the iptables rules cutClients added and healClients has not removed yet, by address. */
  private readonly cuts = new Map<string, string[]>();
  /** killOnExit kills the members and deletes their data if the test process ends without stop() (a crash, a thrown test). */
  private readonly killOnExit = () => {
    for (const address of [...this.cuts.keys()]) this.healClients(address);
    for (const m of this.members) {
      try {
        if (m.pid) process.kill(m.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  };

  private constructor(
    /** dir holds every member's data directory and log. */
    readonly dir: string,
    readonly members: EtcdMember[],
    private readonly binary: string,
    private readonly args: string[],
    private readonly initialCluster: string,
    private readonly token: string,
    /** clientAddresses are the loopback addresses every member also serves clients on. */
    readonly clientAddresses: string[] = [],
  ) {}

  /** start launches the members and waits until every one reports healthy. */
  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const binary = findEtcd();
    if (!binary) throw new Error('etcd not installed (apt-get install -y etcd-server)');
    const n = opts.members ?? 1;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-etcd-'));
    const members: EtcdMember[] = [];
    for (let i = 0; i < n; i++) {
      const clientPort = await freePort();
      const peerPort = await freePort();
      members.push({ name: `m${i}`, clientPort, peerPort, endpoint: `127.0.0.1:${clientPort}`, dataDir: path.join(dir, `m${i}.etcd`), logFile: path.join(dir, `m${i}.log`), pid: 0 });
    }
    const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const args = ['--max-txn-ops', String(opts.maxTxnOps ?? 4096), '--logger', 'zap', '--log-level', 'warn', ...(opts.extraArgs ?? [])];
    const cluster = new EtcdCluster(dir, members, binary, args, initialCluster, `factory-test-${path.basename(dir)}`, opts.clientAddresses ?? []);
    process.on('exit', cluster.killOnExit);
    try {
      for (let i = 0; i < n; i++) cluster.spawnMember(i, 'new');
      await cluster.waitHealthy(opts.readyTimeoutMs ?? 20_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** endpoints lists `127.0.0.1:<port>` of every member (running or not). */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  /** endpointsOn lists `<address>:<port>` of every member: the cluster as reached through one of the clientAddresses. */
  endpointsOn(address: string): string[] {
    if (!this.clientAddresses.includes(address)) throw new Error(`the members do not serve clients on ${address} (clientAddresses: ${this.clientAddresses.join(', ') || 'none'})`);
    return this.members.map((m) => `${address}:${m.clientPort}`);
  }

  /** url is the `--state` URL of a state under prefix on this cluster: `etcd://a,b,c/prefix` (through address, one of the clientAddresses, when given). */
  url(prefix: string, address?: string): string {
    return `etcd://${(address ? this.endpointsOn(address) : this.endpoints).join(',')}/${prefix.replace(/^\/+/, '')}`;
  }

  /** clientCutRule is the iptables rule that cuts address off: one DROP of TCP to every member's client port there (one rule: the cut is atomic). */
  private clientCutRule(address: string): string[] {
    this.endpointsOn(address);
    return ['INPUT', '-d', address, '-p', 'tcp', '-m', 'multiport', '--dports', this.members.map((m) => m.clientPort).join(','), '-j', 'DROP'];
  }

  /**
   * cutClients drops every packet to the members' client ports on address (one of clientAddresses):
   * connections already open there go half-open, new ones never connect; the other addresses and
   * the peer links are untouched. Needs root and iptables.
   */
  cutClients(address: string): void {
    if (this.cuts.has(address)) return;
    const rule = this.clientCutRule(address);
    execFileSync('iptables', ['-w', '-I', ...rule]);
    this.cuts.set(address, rule);
  }

  /** healClients removes the rule cutClients added for address, by its exact spec (never a flush). */
  healClients(address: string): void {
    const rule = this.cuts.get(address);
    if (!rule) return;
    spawnSync('iptables', ['-w', '-D', ...rule]);
    this.cuts.delete(address);
  }

  private spawnMember(i: number, state: 'new' | 'existing'): void {
    const m = this.members[i]!;
    const log = fs.openSync(m.logFile, 'a');
    const clientUrls = [m.endpoint, ...this.clientAddresses.map((a) => `${a}:${m.clientPort}`)].map((e) => `http://${e}`).join(',');
    const child = spawn(
      this.binary,
      [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', clientUrls,
        '--advertise-client-urls', `http://${m.endpoint}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', this.initialCluster,
        '--initial-cluster-state', state,
        '--initial-cluster-token', this.token,
        ...this.args,
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    if (!child.pid) throw new Error(`cannot start etcd member ${m.name}`);
    m.pid = child.pid;
    this.procs.set(i, child);
    child.once('exit', () => {
      if (m.pid === child.pid) m.pid = 0;
    });
  }

  /** waitHealthy waits until every running member reports healthy; throws with the logs' tails after the timeout. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.filter((m) => m.pid !== 0);
      if (running.length === 0) throw new Error('no etcd member is running');
      const ok = await Promise.all(running.map((m) => memberHealthy(m.endpoint)));
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) {
        const tails = running.map((m) => `${m.name}: ${fs.existsSync(m.logFile) ? fs.readFileSync(m.logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : ''}`);
        throw new Error(`etcd members did not become healthy within ${timeoutMs} ms:\n${tails.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * raftLeader is the index of the member that leads the cluster (etcd's own raft leader), as the
   * running members' status says; undefined when none says it leads. Killing it costs an election
   * in etcd (1-2.5 s here, lease renewals wait for it); killing another member does not.
   */
  async raftLeader(): Promise<number | undefined> {
    for (const [i, m] of this.members.entries()) {
      if (m.pid === 0) continue;
      try {
        const res = await fetch(`http://${m.endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
        const st = (await res.json()) as { leader?: string; header?: { member_id?: string } };
        if (st.leader && st.leader === st.header?.member_id) return i;
      } catch {
        /* down or busy: ask the next one */
      }
    }
    return undefined;
  }

  /** kill sends a signal to member i by pid (default SIGKILL) and waits for it to exit. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const m = this.members[i]!;
    const child = this.procs.get(i);
    if (!child || m.pid === 0) return;
    const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    try {
      process.kill(m.pid, signal);
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 10_000);
    await gone;
    clearTimeout(t);
    m.pid = 0;
  }

  /** restart starts a stopped member again on its data directory (it rejoins the cluster). */
  async restart(i: number, timeoutMs = 20_000): Promise<void> {
    if (this.members[i]!.pid !== 0) return;
    this.spawnMember(i, 'existing');
    await this.waitHealthy(timeoutMs);
  }

  /** stop removes the client cuts, kills every member by pid and deletes the folder (a graceful stop of a member waits for its peers, seconds). */
  async stop(): Promise<void> {
    process.off('exit', this.killOnExit);
    for (const address of [...this.cuts.keys()]) this.healClients(address);
    await Promise.all(this.members.map((_, i) => this.kill(i, 'SIGKILL')));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * startEtcd starts a test cluster. Returns `{skip}` with a reason when etcd is not installed (and CI
 * is not set); throws when CI is set or the members do not come up.
 */
export async function startEtcd(opts: EtcdClusterOptions = {}): Promise<EtcdCluster | { skip: string }> {
  const skip = etcdSkipReason();
  if (skip) return { skip };
  return EtcdCluster.start(opts);
}
