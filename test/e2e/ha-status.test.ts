/**
 * `factory control status` on HA (issue 13): three real control hosts on one state in a real
 * 3-member etcd cluster on loopback (lease TTL 2 s). Through any host, and from etcd without one, the
 * status names the same leader and epoch and the 3 hosts with their views; a follower writes nothing
 * (no root token of its own, a status through it records nothing: every writers' lock on the state
 * is taken by the leader of the time, with its epoch). kill -9 of the leader: the status names the
 * new leader, the dead host is gone within its lease, and `factory events` carries a leader-elected
 * that names the old epoch and says it did not resign; a clean stop says it resigned.
 * Skipped without etcd, failed under CI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3, type Watcher } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ControlStatus } from '../../src/control/control-status.js';
import { runCli, scratchDir, waitFor } from '../helpers/cli.js';
import { HaHosts, type HaHost } from '../helpers/ha-jobs-hosts.js';
import { oneCluster, writeInventory } from '../helpers/inventory.js';
import { EtcdCluster, etcdSkipReason } from '../harness/etcd.js';

const skip = etcdSkipReason();
const scratch = scratchDir('factory-ha-status-');
const inv = path.join(scratch.dir, 'inventory.yaml');
const nowhere = path.join(scratch.dir, 'nowhere');
const TTL_S = 2;

let cluster: EtcdCluster | undefined;
let ha: HaHosts | undefined;
/** hosts are the three started hosts, in their slots' order. */
let hosts: HaHost[] = [];
let location = '';
let etcd: Etcd3 | undefined;
let lockWatch: Watcher | undefined;
/** lockOwners are the values of every `<prefix>/lock` put: who took the writers' lock, with which epoch. */
const lockOwners: { pid: number; epoch?: number; purpose: string }[] = [];

const remote = (list: HaHost[]): string[] => ha!.remote(list);
const leading = (h: HaHost): boolean => ha!.epochOf(h) !== undefined;
const epochOf = (h: HaHost): number => ha!.epochOf(h)!;
const alive = (h: HaHost): boolean => ha!.alive(h);

async function controlStatus(args: string[]): Promise<ControlStatus> {
  const r = await runCli(['control', 'status', '--json', ...args], { cwd: scratch.dir, timeoutMs: 60_000 });
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return JSON.parse(r.stdout) as ControlStatus;
}

async function events(list: HaHost[]): Promise<{ kind: string; epoch?: number; message: string; topic: string; rev: number }[]> {
  const r = await runCli(['events', '--json', ...remote(list)], { cwd: scratch.dir, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** pidOf is a host's process id (bin/factory execs node: the record's pid). */
const pidOf = (h: HaHost): number => h.pid;

beforeAll(async () => {
  if (skip) return;
  writeInventory(inv, oneCluster('dc', 'c1', [{ name: 'a1', local: true, workDir: path.join(scratch.dir, 'agent'), resources: { cpus: 8, mem: '8Gi' } }]));
  cluster = await EtcdCluster.start({ members: 3 });
  location = cluster.url('hastatus');
  // every writers' lock taken on the state, from before the first host starts
  etcd = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
  lockWatch = await etcd.watch().key('/hastatus/lock').create();
  lockWatch.on('put', (kv) => lockOwners.push(JSON.parse(kv.value.toString('utf8'))));
  ha = new HaHosts({ dir: scratch.dir, location, inventory: inv, leaseTtlS: TTL_S, reconcileS: 0 });
  hosts = await Promise.all([0, 1, 2].map((i) => ha!.start(i)));
  await ha.waitLeader(20_000);
  // every host registered and sees the leader (a follower reads the leader key every 100 ms)
  expect(await waitFor(async () => (await etcd!.getAll().prefix('/hastatus/hosts/').keys()).length === 3, 10_000, 100)).toBe(true);
}, 90_000);

afterAll(async () => {
  for (const h of ha?.live ?? []) await ha!.kill(h);
  await lockWatch?.cancel().catch(() => undefined);
  etcd?.close();
  await cluster?.stop();
  scratch.cleanup();
}, 60_000);

/** everyLockByTheLeader checks that each writers' lock was taken by a leader, naming the epoch that host led. */
function everyLockByTheLeader(): void {
  expect(lockOwners.length).toBeGreaterThan(0);
  const ledBy = new Map(hosts.filter((h) => leading(h)).map((h) => [epochOf(h), pidOf(h)]));
  for (const o of lockOwners) {
    expect(o.epoch, JSON.stringify(o)).toBeDefined();
    expect(ledBy.get(o.epoch!), JSON.stringify(o)).toBe(o.pid);
  }
}

describe.skipIf(skip !== undefined)(`factory control status on 3 hosts and a 3-member etcd cluster${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('through any host and from etcd alone: the same leader and epoch, the 3 hosts and their views, the members', async () => {
    const leader = hosts.find((h) => leading(h))!;
    const epoch = epochOf(leader);
    const seen: ControlStatus[] = [];
    // when each status command began and ended: its heartbeat was read in between, so its age is
    // judged from the command's own start (not from after all four commands, which under load took >5 s)
    const spans: { from: number; to: number }[] = [];
    const timed = async (args: string[]) => {
      const from = Date.now();
      seen.push(await controlStatus(args));
      spans.push({ from, to: Date.now() });
    };
    for (const h of hosts) await timed(['--control', h.url!, '--fingerprint', h.fingerprint!, '--token-file', ha!.rootToken(), '--state', nowhere]);
    await timed(['--state', location]);
    for (const [i, s] of seen.entries()) {
      const via = i < 3 ? `host${i}` : 'etcd';
      expect(s.state, via).toMatchObject({ backend: 'etcd', location });
      expect(s.leader, via).toMatchObject({ epoch, pid: pidOf(leader), url: leader.url, lease: { ttlSec: TTL_S } });
      expect(s.leader!.lease.leftSec, via).toBeGreaterThan(0);
      const beat = Date.parse(s.leader!.heartbeatAt!);
      expect(spans[i]!.from - beat, via).toBeLessThan(5_000);
      expect(beat, via).toBeLessThanOrEqual(spans[i]!.to);
      expect(s.hosts.map((h) => h.pid).sort(), via).toEqual(hosts.map(pidOf).sort());
      for (const h of s.hosts) {
        expect(h.epoch, `${via}: ${h.id}`).toBe(epoch);
        expect(h.role, `${via}: ${h.id}`).toBe(h.pid === pidOf(leader) ? 'leader' : 'follower');
        if (h.role === 'follower') expect(h.leader, `${via}: ${h.id}`).toEqual({ epoch, pid: pidOf(leader), host: s.leader!.host, url: leader.url });
        expect(h.lease?.leftSec, `${via}: ${h.id}`).toBeGreaterThan(0);
      }
      expect(s.etcd!.members.map((m) => m.name).sort(), via).toEqual(['m0', 'm1', 'm2']);
      expect(s.etcd!.members.every((m) => m.healthy), via).toBe(true);
      expect(s.etcd!.leaderMember, via).toBeDefined();
      expect(s.stale, via).toBeUndefined();
    }
    // each host answers with its own view; without a host, nobody's
    expect(seen.slice(0, 3).map((s) => s.self!.pid)).toEqual(hosts.map(pidOf));
    expect(seen.slice(0, 3).map((s) => s.self!.role)).toEqual(hosts.map((h) => (h === leader ? 'leader' : 'follower')));
    expect(seen[hosts.indexOf(leader)]!.self!.lastRenewalAt).toBeDefined();
    expect(seen[3]!.self).toBeNull();
    expect(seen[3]!.source).toBe('etcd');
    // and for people
    const human = await runCli(['control', 'status', '--state', location], { cwd: scratch.dir });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`Leader: pid ${pidOf(leader)} on `);
    expect(human.stdout).toContain(`epoch ${epoch}`);
    expect(human.stdout).toMatch(/ETCD MEMBER/);
  }, 120_000);

  test('followers write nothing: no root token of their own, a status through one records nothing, every lock is the leader\'s', async () => {
    const leader = hosts.find((h) => leading(h))!;
    const followers = hosts.filter((h) => h !== leader);
    expect(fs.existsSync(path.join(leader.dir, 'tokens', 'root'))).toBe(true);
    for (const f of followers) {
      expect(fs.existsSync(path.join(f.dir, 'tokens', 'root')), f.dir).toBe(false);
      expect(f.log()).toContain('this host writes one when it leads');
    }
    const locksBefore = lockOwners.length;
    const st = await runCli(['status', '--json', '--control', followers[0]!.url!, '--fingerprint', followers[0]!.fingerprint!, '--token-file', ha!.rootToken(), '--state', nowhere], { cwd: scratch.dir, timeoutMs: 60_000 });
    expect(st.code, st.stderr).toBe(0);
    const s = JSON.parse(st.stdout) as { refreshed: boolean; unrefreshed?: string; agents: { name: string; state: string }[] };
    expect(s.refreshed).toBe(false);
    expect(s.unrefreshed).toContain(`this control host follows; the leader records what the agents report (${leader.url})`);
    expect(s.agents.map((a) => a.name)).toEqual(['a1']);
    expect(lockOwners.length).toBe(locksBefore);
    // the state holds one root token: the leader's
    const ev = await events(hosts);
    expect(ev.filter((e) => e.kind === 'token-created')).toHaveLength(1);
    everyLockByTheLeader();
  }, 60_000);

  test('kill -9 of the leader: the status names the new leader, the dead host is gone within its lease, the events say why', async () => {
    const old = hosts.find((h) => leading(h))!;
    const oldEpoch = epochOf(old);
    const rest = hosts.filter((h) => h !== old);
    const killed = ha!.kill(old);
    const killedAt = Date.now();
    await killed;
    const next = await ha!.waitLeader(15_000);
    const epoch = epochOf(next);
    expect(epoch).toBeGreaterThan(oldEpoch);
    // the dead host's registration goes with its lease (etcd expires a lease within about 0.5 s of its TTL)
    const registered = async () => (await etcd!.getAll().prefix('/hastatus/hosts/').keys()).some((k) => k.endsWith(`-${pidOf(old)}`));
    expect(await waitFor(async () => !(await registered()), TTL_S * 1000 + 5000, 50)).toBe(true);
    const goneMs = Date.now() - killedAt;
    process.stderr.write(`HA status: kill -9 of the leader (epoch ${oldEpoch}) → its registration gone ${goneMs} ms after the kill (lease ${TTL_S} s); new leader epoch ${epoch}\n`);
    expect(goneMs).toBeLessThan(TTL_S * 1000 + 1000);
    const s = await controlStatus(remote(rest));
    expect(s.hosts.map((h) => h.pid).sort()).toEqual(rest.map(pidOf).sort());
    expect(s.leader).toMatchObject({ epoch, pid: pidOf(next), url: next.url });
    const follower = rest.find((h) => h !== next)!;
    expect(await waitFor(async () => (await controlStatus(remote(rest))).hosts.find((h) => h.pid === pidOf(follower))?.epoch === epoch, 5_000, 200)).toBe(true);
    // the new leader's first write: leader-elected, naming the old epoch and that it did not resign
    // (a standby deposes a leader whose heartbeat stood still, before its lease expires)
    const ev = await events(rest);
    const elected = ev.find((e) => e.kind === 'leader-elected' && e.epoch === epoch);
    expect(elected, JSON.stringify(ev.slice(-5))).toBeDefined();
    expect(elected!.topic).toBe('state');
    expect(elected!.message).toContain(`took over from epoch ${oldEpoch} (pid ${pidOf(old)} `);
    expect(elected!.message).toMatch(/which did not resign: (this host deposed it, its heartbeat had not moved for \d+ ms|its lease expired)/);
    // the new leader wrote its own root token; the follower still has none
    expect(fs.existsSync(path.join(next.dir, 'tokens', 'root'))).toBe(true);
    expect(fs.existsSync(path.join(follower.dir, 'tokens', 'root'))).toBe(false);
    everyLockByTheLeader();
  }, 90_000);

  test('a clean stop (SIGTERM) of the leader: leader-resigned, and the next leader says it resigned', async () => {
    const old = hosts.find((h) => alive(h) && leading(h))!;
    const oldEpoch = epochOf(old);
    const last = hosts.find((h) => alive(h) && h !== old)!;
    await ha!.kill(old, 'SIGTERM');
    expect(old.child.exitCode, old.log()).toBe(0);
    expect(await ha!.waitLeader(15_000)).toBe(last);
    const ev = await events([last]);
    const resigned = ev.find((e) => e.kind === 'leader-resigned' && e.epoch === oldEpoch);
    expect(resigned?.message).toBe(`pid ${pidOf(old)} on ${(await controlStatus(remote([last]))).self!.host} resigned the leadership (epoch ${oldEpoch}): stopped by SIGTERM`);
    const elected = ev.find((e) => e.kind === 'leader-elected' && e.epoch === epochOf(last));
    expect(elected?.message).toContain(`took over from epoch ${oldEpoch} (pid ${pidOf(old)} `);
    expect(elected?.message).toContain('which resigned (a clean stop)');
    // its registration went at once with its lease (revoked on the way out)
    const s = await controlStatus(remote([last]));
    expect(s.hosts.map((h) => h.pid)).toEqual([pidOf(last)]);
    expect(s.leader).toMatchObject({ epoch: epochOf(last), pid: pidOf(last) });
    everyLockByTheLeader();
  }, 60_000);
});
