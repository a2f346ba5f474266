/**
 * The leader election on a real etcd member (src/state/etcd-leader.ts): a standby takes over from a
 * killed leader once its heartbeat stood still for the leader's deadline plus the grace, well before
 * the dead leader's lease would expire; a leader frozen (SIGSTOP) past its deadline is deposed, and
 * when it runs again it learns so and stops (exit 75) instead of acting; a clean resign hands over at
 * once. Leaders run in child processes so that they can be killed and frozen.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EtcdBackend } from '../../src/state/etcd-backend.js';
import { connectEtcd, etcdSettingsFromEnv, parseEtcdLocation } from '../../src/state/etcd-client.js';
import { EtcdLeader } from '../../src/state/etcd-leader.js';
import { etcdChild } from '../harness/etcd-child.js';
import { etcdSkipReason, EtcdCluster } from '../harness/etcd.js';

const skip = etcdSkipReason();
const TTL = 5;

/** leaderScript leads the state at location and prints LEADING <epoch>, or LOST <why> before exiting 75. */
const leaderScript = (location: string) => `
  const b = await EtcdBackend.open(${JSON.stringify(location)});
  const e = b.election({ ttlSec: ${TTL}, onLost: (why) => { process.stdout.write('LOST ' + why + '\\n'); process.exit(75); } });
  const epoch = await e.campaign();
  process.stdout.write('LEADING ' + epoch + ' ' + e.deadlineMs + ' ' + e.graceMs + '\\n');
  setInterval(() => {}, 1000);
`;

describe.skipIf(skip !== undefined)(`etcd leader election${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: EtcdCluster;
  let n = 0;
  const opened: EtcdBackend[] = [];
  const location = () => `etcd://${cluster.members[0]!.endpoint}/leader-${process.pid}-${++n}`;

  beforeAll(async () => {
    cluster = await EtcdCluster.start({ members: 1 });
  }, 60_000);
  afterAll(async () => {
    for (const b of opened) await b.close().catch(() => undefined);
    await cluster?.stop();
  }, 60_000);

  /** standby opens the state here and campaigns; resolves with the time it led and the election. */
  async function standby(loc: string): Promise<{ led: Promise<number>; election: EtcdLeader }> {
    const b = await EtcdBackend.open(loc);
    opened.push(b);
    const election = b.election({ ttlSec: TTL, onLost: () => undefined });
    const led = election.campaign().then(() => Date.now());
    return { led, election };
  }

  test('kill -9 of the leader: a standby leads once the heartbeat stood still for deadline + grace, before the lease expires', async () => {
    const loc = location();
    const leader = etcdChild(leaderScript(loc));
    try {
      const [, epoch, deadline, grace] = (await leader.waitFor(/^LEADING /)).split(' ').map(Number);
      expect(deadline).toBe(2000); // 0.4 × ttl
      expect(grace).toBe(400);
      const s = await standby(loc);
      await new Promise((r) => setTimeout(r, 1500)); // the standby sees the heartbeat move
      leader.proc.kill('SIGKILL');
      const killed = Date.now();
      const ms = (await s.led) - killed;
      process.stderr.write(`etcd leader: kill -9 → standby leads in ${ms} ms (deadline ${deadline} ms + grace ${grace} ms, lease ${TTL} s)\n`);
      // never before the dead leader's own watchdog would have stopped it (its last heartbeat was at most one renewal before the kill)
      expect(ms).toBeGreaterThanOrEqual(deadline! + grace! - deadline! / 4);
      expect(ms).toBeLessThan(TTL * 1000);
      expect(s.election.epoch).toBeGreaterThan(epoch!);
      expect(s.election.deposed).toMatchObject({ epoch });
      expect(s.election.deposed!.silentMs).toBeGreaterThanOrEqual(deadline! + grace!);
      await s.election.resign();
    } finally {
      leader.proc.kill('SIGKILL');
    }
  }, 60_000);

  test('a leader frozen past its deadline is deposed; running again, it learns so and exits 75 without acting', async () => {
    const loc = location();
    const leader = etcdChild(leaderScript(loc));
    try {
      const [, epoch] = (await leader.waitFor(/^LEADING /)).split(' ').map(Number);
      const s = await standby(loc);
      await new Promise((r) => setTimeout(r, 1000));
      leader.proc.kill('SIGSTOP');
      await s.led;
      expect(s.election.deposed).toMatchObject({ epoch });
      const exited = new Promise<number | null>((r) => leader.proc.once('exit', (code) => r(code)));
      leader.proc.kill('SIGCONT');
      expect(await exited).toBe(75);
      const lost = leader.lines.find((l) => l.startsWith('LOST '));
      // its watchdog saw the silence, or its next heartbeat was refused: either way it stopped
      expect(lost).toMatch(/no heartbeat of the leader was written within its deadline|this host was deposed|lease .* (expired|is gone)/);
      expect(s.election.epoch).toBeGreaterThan(epoch!);
      await s.election.resign();
    } finally {
      leader.proc.kill('SIGKILL');
    }
  }, 60_000);

  test('a leader that resigns hands over at once: the standby leads within a second', async () => {
    const loc = location();
    const first = await standby(loc);
    await first.led;
    const second = await standby(loc);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await first.election.resign();
    const ms = (await second.led) - t0;
    expect(ms).toBeLessThan(1000);
    expect(second.election.deposed).toBeUndefined();
    await second.election.resign();
  }, 30_000);

  test('a heartbeat that never answers (one the client sent to a member cut off from its peers) does not hold up the next: the leader keeps leading', async () => {
    const loc = parseEtcdLocation(location());
    const client = await connectEtcd(loc, etcdSettingsFromEnv());
    try {
      const keys = { leader: Buffer.from(`${loc.prefix}/leader`), beat: Buffer.from(`${loc.prefix}/leader-beat`) };
      let lost: string | undefined;
      const election = new EtcdLeader(client, keys, loc, { ttlSec: 2, onLost: (why) => (lost = why) });
      await election.campaign();
      // from now on every third transaction hangs, as a call sent to a member without a quorum does
      // (the client picks a member per call: the next one goes elsewhere)
      const kv = client.kv;
      const txn = kv.txn.bind(kv);
      let calls = 0;
      kv.txn = ((...args: Parameters<typeof txn>) => (++calls % 3 === 0 ? new Promise(() => undefined) : txn(...args))) as typeof kv.txn;
      await new Promise((r) => setTimeout(r, 4 * election.deadlineMs));
      expect(lost).toBeUndefined();
      expect(election.epoch).toBeDefined();
      expect(calls).toBeGreaterThan(8); // the heartbeats went on, every renewal interval
      kv.txn = txn;
      await election.resign();
    } finally {
      client.close();
    }
  }, 30_000);
});
