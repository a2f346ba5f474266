/**
 * EtcdPartition cuts members of a test etcd cluster (test/harness/etcd.ts) off from their peers with
 * iptables DROP rules, and heals them, for the HA trials. The members all run on 127.0.0.1, so no
 * rule can name a member by its address:
 *
 * - the member's peer port names everything on the connections its peers dial to it: packets to it
 *   (INPUT --dport) and its answers (INPUT --sport);
 * - the connections it dials to its peers' ports (raft's stream readers and message pipeline: over
 *   them it asks for its peers' messages and sends its own when their streams to it are down) are
 *   named by its cgroup v2 (OUTPUT -m cgroup --path): restart() starts a member again and puts it in a
 *   cgroup of its own before it opens a socket (a socket belongs to the cgroup its process was in when
 *   it was made, so a member must be restarted once before it can be cut off: confineAll()).
 *
 * A cut member's outgoing packets to its peers are all dropped; what its peers had already sent to it
 * on its own connections may still arrive for a round trip or two, until TCP stalls without acks.
 * Every rule is added with -I and removed by -D with the very same words (never a flush: other tests
 * share the chains), each once, also from heal() in an afterAll; the client ports are never touched.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EtcdCluster } from '../harness/etcd.js';

const run = promisify(execFile);

/** cgroup2Root is where the cgroup v2 hierarchy is mounted (undefined: none). */
export function cgroup2Root(): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, where, type] = line.split(' ');
    if (type === 'cgroup2' && where) return where;
  }
  return undefined;
}

/**
 * partitionSkipReason says why members cannot be cut off here (no cgroup v2 to name a member's own
 * connections), or undefined when they can. iptables itself is test/harness/sshd.ts's
 * iptablesAvailable. Under CI it throws: a partition test fails there, it never silently skips.
 */
export function partitionSkipReason(): string | undefined {
  const reason = cgroup2Root() ? undefined : 'no cgroup v2 hierarchy is mounted (iptables -m cgroup --path names a member\'s own connections by it)';
  if (reason && process.env.CI) throw new Error(`etcd partitions cannot run in CI: ${reason}`);
  if (reason) process.stderr.write(`SKIPPING etcd partitions: ${reason}\n`);
  return reason;
}

/** EtcdPartition cuts and heals members of one cluster. */
export class EtcdPartition {
  /** rules are the rules in place, by member: each exactly as added. */
  private readonly rules = new Map<number, { chain: string; spec: string[] }[]>();
  private readonly root: string;
  private readonly tag: string;

  constructor(private readonly cluster: EtcdCluster) {
    const root = cgroup2Root();
    if (!root) throw new Error('no cgroup v2 hierarchy is mounted');
    this.root = root;
    this.tag = `factory-ha-${process.pid}`;
    process.on('exit', this.healOnExit);
  }

  /** healOnExit removes the rules still in place if the test process ends without healAll (a crash, a thrown test). */
  private readonly healOnExit = () => {
    for (const rules of this.rules.values()) for (const r of rules) spawnSync('iptables', ['-w', '-D', r.chain, ...r.spec]);
    this.rules.clear();
  };

  /** cgroupOf is member i's cgroup, relative to the hierarchy's root (as iptables --path takes it). */
  cgroupOf(i: number): string {
    return `${this.tag}-m${i}`;
  }

  /** restart starts stopped member i again, in its own cgroup from its first instruction, and waits until the cluster is healthy. */
  async restart(i: number): Promise<void> {
    const dir = path.join(this.root, this.cgroupOf(i));
    fs.mkdirSync(dir, { recursive: true });
    // restart() spawns the member before its first await: its pid is known before etcd opens a socket
    const up = this.cluster.restart(i);
    const pid = this.cluster.members[i]!.pid;
    if (pid) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    await up;
    const m = this.cluster.members[i]!;
    if (m.pid !== pid) throw new Error(`etcd member ${i} (pid ${pid}) exited as it started again: ${fs.readFileSync(m.logFile, 'utf8').trim().split('\n').slice(-5).join('\n')}`);
    const own = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    if (!own.includes(`::/${this.cgroupOf(i)}`)) throw new Error(`etcd member ${i} (pid ${pid}) is not in its cgroup: ${own}`);
  }

  /** confineAll kills and restarts every member, one at a time, so that each runs in its own cgroup. */
  async confineAll(): Promise<void> {
    for (let i = 0; i < this.cluster.members.length; i++) {
      await this.cluster.kill(i);
      await this.restart(i);
    }
  }

  /** isolated lists the members cut off now. */
  get isolated(): number[] {
    return [...this.rules.keys()];
  }

  /** isolate cuts member i off from its peers (its client port stays open). */
  async isolate(i: number): Promise<void> {
    if (this.rules.has(i)) return;
    const m = this.cluster.members[i]!;
    const peer = String(m.peerPort);
    const comment = ['-m', 'comment', '--comment', `${this.tag} m${i}`];
    const rules = [
      { chain: 'INPUT', spec: ['-p', 'tcp', '--dport', peer, ...comment, '-j', 'DROP'] },
      { chain: 'INPUT', spec: ['-p', 'tcp', '--sport', peer, ...comment, '-j', 'DROP'] },
      ...this.cluster.members
        .filter((_, j) => j !== i)
        .map((o) => ({ chain: 'OUTPUT', spec: ['-m', 'cgroup', '--path', this.cgroupOf(i), '-p', 'tcp', '--dport', String(o.peerPort), ...comment, '-j', 'DROP'] })),
    ];
    const added: typeof rules = [];
    this.rules.set(i, added);
    for (const r of rules) {
      await run('iptables', ['-w', '-I', r.chain, ...r.spec]);
      added.push(r);
    }
  }

  /** heal removes member i's rules (each by -D with the words it was added with). */
  async heal(i: number): Promise<void> {
    const rules = this.rules.get(i);
    if (!rules) return;
    this.rules.delete(i);
    for (const r of rules) await run('iptables', ['-w', '-D', r.chain, ...r.spec]).catch(() => undefined);
  }

  /** healAll removes every rule still in place. */
  async healAll(): Promise<void> {
    for (const i of this.isolated) await this.heal(i);
  }

  /** dispose removes the rules still in place and the members' cgroups (call it once the members are stopped). */
  dispose(): void {
    this.healOnExit();
    process.off('exit', this.healOnExit);
    for (let i = 0; i < this.cluster.members.length; i++) {
      try {
        fs.rmdirSync(path.join(this.root, this.cgroupOf(i)));
      } catch {
        /* never made, or a process still in it */
      }
    }
  }
}
