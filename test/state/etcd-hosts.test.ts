/**
 * The control hosts' registrations (`<prefix>/hosts/<id>`) and the status reader, against a real
 * 3-member etcd cluster on loopback: a host's key carries its view and goes with its lease (at once
 * on a clean stop, within the TTL when it dies), comes back when its lease was lost; the reader names
 * the members and their health (one killed: unhealthy, named), the leader with its epoch and lease.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StateError } from '../../src/errors.js';
import { EtcdBackend } from '../../src/state/etcd-backend.js';
import type { EtcdHostRegistry } from '../../src/state/etcd-hosts.js';
import { EtcdStatusReader } from '../../src/state/etcd-status.js';
import { waitFor } from '../helpers/cli.js';
import { etcdSkipReason, EtcdCluster } from '../harness/etcd.js';

const skip = etcdSkipReason();

describe.skipIf(skip !== undefined)(`control hosts on etcd: registrations and status${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: EtcdCluster;
  let backend: EtcdBackend;
  let raw: Etcd3;
  const opened: { close(): unknown }[] = [];

  beforeAll(async () => {
    cluster = await EtcdCluster.start({ members: 3 });
    backend = await EtcdBackend.open(cluster.url('hosts'));
    raw = new Etcd3({ hosts: cluster.endpoints.map((e) => `http://${e}`) });
  }, 60_000);

  afterAll(async () => {
    for (const o of opened) await o.close();
    await backend?.close();
    raw?.close();
    await cluster?.stop();
  }, 60_000);

  let n = 0;
  const registry = (ttlSec = 2): EtcdHostRegistry => {
    const r = backend.hostRegistry({ ttlSec, url: 'https://127.0.0.1:1', id: `test-${++n}` });
    opened.push(r);
    return r;
  };
  const reader = (): EtcdStatusReader => {
    const r = backend.statusReader();
    opened.push(r);
    return r;
  };

  test('a registration carries the host and its view, changes with it, and goes at once on a clean stop', async () => {
    const reg = registry();
    const read = reader();
    await reg.register();
    let [h] = await read.hosts();
    expect(h).toMatchObject({ id: reg.id, pid: process.pid, url: 'https://127.0.0.1:1', role: 'candidate', lease: { ttlSec: 2 } });
    expect(h!.lease.leftSec).toBeGreaterThan(0);
    expect(h!.lease.id).toMatch(/^[0-9a-f]+$/);
    await reg.update({ role: 'follower', epoch: 9, leader: { epoch: 9, pid: 1, host: 'other', url: 'https://other:1' } });
    [h] = await read.hosts();
    expect(h).toMatchObject({ role: 'follower', epoch: 9, leader: { epoch: 9, pid: 1, host: 'other', url: 'https://other:1' } });
    // the registration is not part of the state: the mirror never sees it
    expect(backend.view().rev).toBe((await read.state()).rev);
    await reg.close();
    expect(await read.hosts()).toEqual([]);
  });

  test('a host that stops renewing (it died) is gone within its lease; one whose lease was revoked registers again', async () => {
    const dead = registry(2);
    const alive = registry(2);
    const read = reader();
    await dead.register();
    await alive.register();
    expect((await read.hosts()).length).toBe(2);
    // the dead one stops renewing, as a killed process would (its lease is left to expire)
    clearInterval((dead as unknown as { timer: NodeJS.Timeout }).timer);
    const t0 = Date.now();
    expect(await waitFor(async () => (await read.hosts()).length === 1, 6_000, 100)).toBe(true);
    const goneMs = Date.now() - t0;
    expect(goneMs).toBeLessThan(4_000);
    (dead as unknown as { closed: boolean }).closed = true;
    // the live one's lease revoked behind its back (as etcd does to a host cut off past its TTL)
    const first = (await read.hosts())[0]!;
    await raw.leaseClient.leaseRevoke({ ID: BigInt(`0x${first.lease.id}`).toString() });
    const renewed = async () => {
      const h = (await read.hosts())[0];
      return h !== undefined && h.lease.id !== first.lease.id;
    };
    expect(await waitFor(renewed, 5_000, 100)).toBe(true);
    const again = (await read.hosts())[0]!;
    expect(again.id).toBe(alive.id);
    expect(again.lease.id).not.toBe(first.lease.id);
  }, 30_000);

  test('the leader: epoch, pid, URL and what is left of its lease; none after it resigns', async () => {
    const read = reader();
    expect(await read.leader()).toBeNull();
    const election = backend.election({ ttlSec: 3, url: 'https://127.0.0.1:2', onLost: () => undefined });
    const epoch = await election.campaign();
    try {
      const l = await read.leader();
      expect(l).toMatchObject({ epoch, pid: process.pid, url: 'https://127.0.0.1:2', lease: { ttlSec: 3 } });
      expect(l!.lease.leftSec).toBeGreaterThan(0);
      expect(l!.lease.leftSec).toBeLessThanOrEqual(3);
      expect(Date.now() - Date.parse(l!.heartbeatAt!)).toBeLessThan(3000);
    } finally {
      await election.resign();
    }
    expect(await read.leader()).toBeNull();
  }, 30_000);

  test('the members: all healthy, one raft leader; a killed member is unhealthy and named, the others answer', async () => {
    const read = reader();
    let m = await read.members();
    expect(m.members.map((x) => x.name).sort()).toEqual(['m0', 'm1', 'm2']);
    expect(m.members.every((x) => x.healthy && x.id.length > 0 && x.raftTerm! > 0 && x.dbSizeBytes! > 0)).toBe(true);
    expect(m.members.filter((x) => x.leader)).toHaveLength(1);
    expect(m.leaderMember).toBe(m.members.find((x) => x.leader)!.name);
    await cluster.kill(2);
    try {
      const t0 = Date.now();
      m = await read.members();
      expect(Date.now() - t0).toBeLessThan(3_000);
      const down = m.members.find((x) => x.name === 'm2')!;
      expect(down.healthy).toBe(false);
      expect(down.error).toMatch(/^no answer from 127\.0\.0\.1:\d+/);
      expect(m.members.filter((x) => x.name !== 'm2').every((x) => x.healthy)).toBe(true);
    } finally {
      await cluster.restart(2);
    }
  }, 60_000);

  test('read without a host: a reader of the location alone; a prefix without a state is E_STATE_MISSING', async () => {
    const direct = await EtcdStatusReader.open(cluster.url('hosts'));
    try {
      const s = await direct.read();
      expect(s.state).toEqual({ id: backend.id, rev: backend.view().rev });
      expect(s.etcd.members).toHaveLength(3);
      expect(s.stale).toBeUndefined();
    } finally {
      direct.close();
    }
    const empty = await EtcdStatusReader.open(cluster.url('nothing-here'));
    try {
      const err = (await empty.read().catch((e: unknown) => e)) as StateError;
      expect(err.code).toBe('E_STATE_MISSING');
      expect(err.message).toContain('/nothing-here');
    } finally {
      empty.close();
    }
  }, 30_000);
});
