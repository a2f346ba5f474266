/**
 * EtcdLeader on a fake etcd client and fake timers, to the millisecond: the leader stops when the
 * deadline of the newest heartbeat etcd wrote passes (its send time + deadlineMs), not later, and
 * never while heartbeats are written; a standby whose reads of the leader key fail says since when
 * and why. (etcd-leader.test.ts runs the election on a real member.)
 */
import type { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { EtcdLeader } from '../../src/state/etcd-leader.js';

/** Txn is the part of an etcd transaction the fake looks at. */
interface Txn {
  compare: { create_revision?: number }[];
  success: { request_range?: unknown }[];
}

/**
 * fakeEtcd answers the election's calls 3 ms later, as a member on loopback would: nobody leads, the
 * key is created at revision 42, and each heartbeat (the n-th) is written when writing(n) is true,
 * else never answered (a half-open link).
 */
function fakeEtcd(writing: (n: number) => boolean) {
  const beats: { at: number; written: boolean }[] = [];
  const later = <T>(v: T) => new Promise<T>((resolve) => setTimeout(() => resolve(v), 3));
  const lease = { on: () => lease, grant: async () => '7', revoke: async () => undefined, keepaliveOnce: () => later({ TTL: '2' }) };
  const client = {
    lease: () => lease,
    kv: {
      txn: (t: Txn) => {
        if (t.success[0]?.request_range) return later({ responses: [{ response_range: { kvs: [] } }, { response_range: { kvs: [] } }] });
        if (t.compare[0]?.create_revision === 0) return later({ succeeded: true, header: { revision: '42' } });
        const written = writing(beats.length);
        beats.push({ at: Date.now(), written });
        return written ? later({ succeeded: true, header: { revision: '43' } }) : new Promise(() => undefined);
      },
    },
  };
  return { client: client as unknown as Etcd3, beats };
}

const loc = { endpoints: ['127.0.0.1:2379'], prefix: '/t' };
const keys = { leader: Buffer.from('/t/leader'), beat: Buffer.from('/t/leader-beat') };

afterEach(() => {
  vi.useRealTimers();
});

describe('EtcdLeader on a fake etcd, fake timers', () => {
  test('stops when the deadline of the newest written heartbeat passes, not a poll tick later', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    let writing = true;
    const { client, beats } = fakeEtcd(() => writing);
    const lost: { why: string; at: number }[] = [];
    const leader = new EtcdLeader(client, keys, loc, { ttlSec: 2, onLost: (why) => lost.push({ why, at: Date.now() }) });
    expect(leader.deadlineMs).toBe(800);
    const campaign = leader.campaign();
    await vi.advanceTimersByTimeAsync(20);
    expect(await campaign).toBe(42);
    // heartbeats written (every 200 ms): it leads on
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lost).toEqual([]);
    expect(leader.epoch).toBe(42);
    expect(beats.length).toBeGreaterThanOrEqual(20);
    // etcd stops answering: the newest written heartbeat was sent just now
    writing = false;
    const last = beats.filter((b) => b.written).at(-1)!.at;
    await vi.advanceTimersByTimeAsync(last + 799 - Date.now());
    expect(lost).toEqual([]);
    expect(leader.epoch).toBe(42);
    await vi.advanceTimersByTimeAsync(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.at - last).toBe(800);
    expect(lost[0]!.why).toMatch(/^no heartbeat of the leader was written within its deadline of 800 ms \(the last one written was sent 800 ms ago/);
    expect(leader.epoch).toBeUndefined();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lost).toHaveLength(1);
  });

  test('a leader that resigned is never told it lost', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { client } = fakeEtcd(() => false);
    const lost: string[] = [];
    const leader = new EtcdLeader(client, keys, loc, { ttlSec: 2, onLost: (why) => lost.push(why) });
    const campaign = leader.campaign();
    await vi.advanceTimersByTimeAsync(20);
    await campaign;
    await vi.advanceTimersByTimeAsync(500);
    await leader.resign();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lost).toEqual([]);
  });

  test('a standby whose reads of the leader key fail says since when and why, until one is answered', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-02T03:04:05.000Z') });
    let how: 'up' | 'down' | 'hang' = 'up';
    let beat = 100;
    const other = { key: keys.leader, value: Buffer.from(JSON.stringify({ pid: 9, host: 'h9', since: 'then', lease: '1', url: 'https://h9:1' })), create_revision: '17' };
    const client = {
      kv: {
        // the other leader's heartbeat moves at every read: nothing to depose
        txn: async () => {
          if (how === 'hang') return new Promise(() => undefined);
          if (how === 'down') throw new Error('14 UNAVAILABLE: No connection established\nmore');
          return { responses: [{ response_range: { kvs: [other] } }, { response_range: { kvs: [{ mod_revision: String(++beat) }] } }] };
        },
      },
    } as unknown as Etcd3;
    const leader = new EtcdLeader(client, keys, loc, { ttlSec: 2, onLost: () => undefined });
    const campaign = leader.campaign().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(300);
    expect(leader.current?.epoch).toBe(17);
    expect(leader.etcdTrouble).toBeUndefined();
    how = 'down';
    await vi.advanceTimersByTimeAsync(100);
    const since = '2026-01-02T03:04:05.400Z';
    expect(leader.etcdTrouble).toBe(`etcd (members 127.0.0.1:2379) has not answered this host since ${since} (14 UNAVAILABLE: No connection established): who leads now is not known here`);
    await vi.advanceTimersByTimeAsync(1000);
    // the first failure is the one dated; the leader last read is kept as a hint
    expect(leader.etcdTrouble).toContain(`since ${since} `);
    expect(leader.current?.epoch).toBe(17);
    how = 'up';
    await vi.advanceTimersByTimeAsync(200);
    expect(leader.etcdTrouble).toBeUndefined();
    // a read that etcd does not answer (no quorum): said once it waited past 250 ms, before its deadline fails it
    how = 'hang';
    await vi.advanceTimersByTimeAsync(100 + 250);
    expect(leader.etcdTrouble).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(leader.etcdTrouble).toBe(`etcd (members 127.0.0.1:2379) has not answered this host's read of the leader key for 251 ms: who leads now is not known here`);
    await vi.advanceTimersByTimeAsync(800);
    expect(leader.etcdTrouble).toMatch(/has not answered this host since .* \(reading the leader key: no answer within 800 ms\)/);
    // the read waiting then fails at its deadline; the next one is answered
    how = 'up';
    await vi.advanceTimersByTimeAsync(1000);
    expect(leader.etcdTrouble).toBeUndefined();
    await leader.resign();
    await vi.advanceTimersByTimeAsync(200);
    expect(await campaign).toMatchObject({ code: 'E_STOPPED' });
  });
});
