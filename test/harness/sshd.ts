/**
 * A fleet of real OpenSSH servers on loopback for tests and benchmarks: host i listens on
 * 127.0.i.1:2222 with its own host key and pid file; one generated client key is authorized for
 * root. Everything lives in one folder (mode 0755, `StrictModes no`) and is stopped by pid.
 * `iptables` DROP rules partition a host; stopping its sshd makes it unreachable.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** SSHD_PORT is the port every fake host listens on (each on its own address). */
export const SSHD_PORT = 2222;

/** SshdHost is one running fake host. */
export interface SshdHost {
  index: number;
  /** address is 127.0.<index>.1. */
  address: string;
  port: number;
  pid: number;
  hostKey: string;
  hostKeyPub: string;
  configFile: string;
}

/** findSshd returns the sshd binary, or undefined when OpenSSH's server is not installed. */
export function findSshd(): string | undefined {
  for (const p of ['/usr/sbin/sshd', '/usr/local/sbin/sshd']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v sshd'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/**
 * sshdSkipReason says why SSH tests cannot run here (no sshd, not root), or undefined when they can.
 * Under CI (process.env.CI set) a missing sshd is a failure, not a skip: it throws.
 */
export function sshdSkipReason(): string | undefined {
  let reason: string | undefined;
  if (!findSshd()) reason = 'sshd not installed (apt-get install -y openssh-server)';
  else if (spawnSync('sh', ['-c', 'command -v ssh-keygen'], { encoding: 'utf8' }).status !== 0) reason = 'ssh-keygen not installed (apt-get install -y openssh-client)';
  else if (process.getuid?.() !== 0) reason = 'SSH tests bind 127.0.N.1 sshd instances and log in as root: run as root';
  if (reason && process.env.CI) throw new Error(`SSH tests cannot run in CI: ${reason}`);
  if (reason) process.stderr.write(`SKIPPING SSH tests: ${reason}\n`);
  return reason;
}

/**
 * iptablesAvailable tells whether iptables can add rules here (root with NET_ADMIN). Off CI a
 * missing iptables skips the partition tests with a visible reason; under CI it throws instead.
 */
export function iptablesAvailable(): boolean {
  const r = spawnSync('iptables', ['-w', '-S', 'INPUT'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  const why = `iptables cannot list rules here (${(r.stderr || r.error?.message || 'not installed').trim()}); apt-get install -y iptables`;
  if (process.env.CI) throw new Error(`partition tests cannot run in CI: ${why}`);
  process.stderr.write(`SKIPPING partition tests: ${why}\n`);
  return false;
}

function waitPort(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const attempt = () => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > end) resolve(false);
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

/** SshdFleetOptions configures startSshdFleet. */
export interface SshdFleetOptions {
  /** first is the index of the first host (default 1): hosts are 127.0.first.1 … */
  first?: number;
  /** dir is where keys, configs, pid files and logs go (default: a new folder under /tmp). */
  dir?: string;
  /** extraConfig are more sshd_config lines for every host, e.g. `SetEnv FACTORY_DOCKER_HOST=unix:///…`. */
  extraConfig?: string[];
}

/** SshdFleet is N running sshd instances plus the client key and known_hosts that reach them. */
export class SshdFleet {
  /** hosts are the running fake hosts, in index order. */
  readonly hosts: SshdHost[] = [];
  private readonly procs = new Map<number, ChildProcess>();
  private readonly partitioned = new Set<number>();

  private constructor(
    /** dir holds every generated file. */
    readonly dir: string,
    /** clientKey is the private key authorized on every host. */
    readonly clientKey: string,
    /** knownHosts is a known_hosts file listing every host's key. */
    readonly knownHosts: string,
    private readonly sshd: string,
  ) {}

  /** start launches n sshd instances (127.0.first.1 … 127.0.first+n-1.1) and waits until they accept. */
  static async start(n: number, opts: SshdFleetOptions = {}): Promise<SshdFleet> {
    const sshd = findSshd();
    if (!sshd) throw new Error('sshd not installed (apt-get install -y openssh-server)');
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'factory-sshd-'));
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync('/run/sshd', { recursive: true });
    const clientKey = path.join(dir, 'client_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'factory-test-client', '-f', clientKey]);
    fs.copyFileSync(`${clientKey}.pub`, path.join(dir, 'authorized_keys'));
    const fleet = new SshdFleet(dir, clientKey, path.join(dir, 'known_hosts'), sshd);
    const first = opts.first ?? 1;
    const indices = Array.from({ length: n }, (_, i) => first + i);
    await Promise.all(
      indices.map(async (index) => {
        const hostKey = path.join(dir, `host${index}_ed25519`);
        await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `host${index}`, '-f', hostKey]);
        const configFile = path.join(dir, `sshd${index}.conf`);
        const address = `127.0.${index}.1`;
        fs.writeFileSync(
          configFile,
          [
            `ListenAddress ${address}:${SSHD_PORT}`,
            `HostKey ${hostKey}`,
            `PidFile ${path.join(dir, `sshd${index}.pid`)}`,
            `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
            'StrictModes no',
            'PermitRootLogin prohibit-password',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'UsePAM no',
            'UseDNS no',
            'PrintMotd no',
            'MaxStartups 1000',
            'MaxSessions 1000',
            'LogLevel ERROR',
            'Subsystem sftp internal-sftp',
            ...(opts.extraConfig ?? []),
            '',
          ].join('\n'),
        );
        fleet.hosts.push({ index, address, port: SSHD_PORT, pid: 0, hostKey, hostKeyPub: fs.readFileSync(`${hostKey}.pub`, 'utf8').trim(), configFile });
      }),
    );
    fleet.hosts.sort((a, b) => a.index - b.index);
    fs.writeFileSync(
      fleet.knownHosts,
      fleet.hosts.map((h) => `[${h.address}]:${h.port} ${h.hostKeyPub.split(' ').slice(0, 2).join(' ')}\n`).join(''),
    );
    try {
      await Promise.all(fleet.hosts.map((h) => fleet.startHost(h.index)));
    } catch (e) {
      await fleet.stop();
      throw e;
    }
    return fleet;
  }

  /** host returns the fake host with this index. */
  host(index: number): SshdHost {
    const h = this.hosts.find((x) => x.index === index);
    if (!h) throw new Error(`no fake host ${index}`);
    return h;
  }

  /** startHost (re)starts one host's sshd in the foreground (-D) and waits for its port. */
  async startHost(index: number): Promise<void> {
    const h = this.host(index);
    const log = fs.openSync(path.join(this.dir, `sshd${index}.log`), 'a');
    const child = spawn(this.sshd, ['-D', '-e', '-f', h.configFile], { stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    child.unref();
    if (!child.pid) throw new Error(`cannot start sshd for ${h.address}`);
    h.pid = child.pid;
    this.procs.set(index, child);
    if (!(await waitPort(h.address, h.port, 10_000))) {
      throw new Error(`sshd on ${h.address}:${h.port} did not come up: ${fs.readFileSync(path.join(this.dir, `sshd${index}.log`), 'utf8').slice(-500)}`);
    }
  }

  /** stopHost kills one host's listening sshd by pid (open sessions keep running, as on a real host). */
  async stopHost(index: number): Promise<void> {
    const h = this.host(index);
    const child = this.procs.get(index);
    if (!h.pid || !child) return;
    const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    try {
      process.kill(h.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    this.procs.delete(index);
    h.pid = 0;
  }

  /** partition drops every packet to the host's address (iptables), like a cut link. */
  async partition(index: number): Promise<void> {
    await run('iptables', ['-w', '-I', 'INPUT', '-d', this.host(index).address, '-j', 'DROP']);
    this.partitioned.add(index);
  }

  /** heal removes the host's DROP rule. */
  async heal(index: number): Promise<void> {
    if (!this.partitioned.has(index)) return;
    await run('iptables', ['-w', '-D', 'INPUT', '-d', this.host(index).address, '-j', 'DROP']).catch(() => undefined);
    this.partitioned.delete(index);
  }

  /** stop heals partitions and kills every sshd of the fleet by pid; removeDir deletes the folder too. */
  async stop(removeDir = false): Promise<void> {
    for (const i of [...this.partitioned]) await this.heal(i);
    await Promise.all(this.hosts.map((h) => this.stopHost(h.index)));
    if (removeDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
