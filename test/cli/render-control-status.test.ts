/** `factory control status` for people: the leader and its lease, members, hosts and their views, who answered. */
import { describe, expect, it } from 'vitest';
import { leaseText, renderControlStatus } from '../../src/cli/render-control-status.js';
import type { ControlStatus } from '../../src/control/control-status.js';

const etcd: ControlStatus = {
  state: { backend: 'etcd', location: 'etcd://127.0.0.1:2379,127.0.0.1:2381/ha', id: 'st-000000000001', rev: 42 },
  etcd: {
    endpoints: ['127.0.0.1:2379', '127.0.0.1:2381'],
    prefix: '/ha',
    members: [
      { id: 'a1', name: 'm0', clientUrls: ['http://127.0.0.1:2379'], peerUrls: [], learner: false, healthy: true, leader: true, raftTerm: 2, dbSizeBytes: 20480 },
      { id: 'b2', name: 'm1', clientUrls: ['http://127.0.0.1:2381'], peerUrls: [], learner: false, healthy: false, leader: false, error: 'no answer from 127.0.0.1:2381: connect ECONNREFUSED\nmore' },
    ],
    leaderMember: 'm0',
  },
  leader: { epoch: 57, pid: 4242, host: 'box', url: 'https://127.0.0.1:40001', since: '2026-01-01T00:00:00.000Z', lease: { id: '694d', ttlSec: 2, leftSec: 1 }, heartbeatAt: '2026-01-01T00:10:00.000Z' },
  hosts: [
    { id: 'box-4242', pid: 4242, host: 'box', url: 'https://127.0.0.1:40001', startedAt: 't', role: 'leader', epoch: 57, lease: { id: '1', ttlSec: 2, leftSec: 1 } },
    { id: 'box-4243', pid: 4243, host: 'box', url: 'https://127.0.0.1:40002', startedAt: 't', role: 'follower', epoch: 57, leader: { epoch: 57, pid: 4242, host: 'box' }, lease: { id: '2', ttlSec: 2, leftSec: 2 } },
    { id: 'box-4244', pid: 4244, host: 'box', startedAt: 't', role: 'candidate', lease: { id: '3', expired: true } },
  ],
  self: { id: 'box-4243', pid: 4243, host: 'box', startedAt: 't', role: 'follower', epoch: 57, stateRev: 42, renewDeadlineMs: 1000 },
  source: 'host',
};

describe('renderControlStatus', () => {
  it('an etcd state: leader with epoch and lease, members with health, hosts with their views, who answered', () => {
    expect(renderControlStatus(etcd)).toBe(
      [
        'State: etcd://127.0.0.1:2379,127.0.0.1:2381/ha (etcd, id st-000000000001, revision 42)',
        'Leader: pid 4242 on box at https://127.0.0.1:40001, epoch 57, since 2026-01-01T00:00:00.000Z; lease 694d (TTL 2 s, 1 s left); last heartbeat 2026-01-01T00:10:00.000Z',
        '',
        'ETCD MEMBER  ID  CLIENT URLS            HEALTH     RAFT LEADER  TERM  DB SIZE  ERROR',
        'm0           a1  http://127.0.0.1:2379  healthy    yes          2     20KiB',
        'm1           b2  http://127.0.0.1:2381  unhealthy               -     -        no answer from 127.0.0.1:2381: connect ECONNREFUSED …',
        '',
        'HOST      PID   URL                      ROLE       EPOCH  FOLLOWS          LEASE',
        'box-4242  4242  https://127.0.0.1:40001  leader     57     -                TTL 2 s, 1 s left',
        'box-4243  4243  https://127.0.0.1:40002  follower   57     pid 4242 on box  TTL 2 s, 2 s left',
        'box-4244  4244  -                        candidate  -      nobody leads     expired',
        '',
        'Answered by box-4243 (follower of epoch 57), its copy of the state at revision 42.',
      ].join('\n'),
    );
  });

  it('read from etcd without a host, nobody leading, some of it stale', () => {
    const out = renderControlStatus({ ...etcd, leader: null, hosts: [], self: null, source: 'etcd', stale: 'read from one etcd member without a quorum (…)' });
    expect(out).toContain('Leader: none (an election is under way, or no host runs)');
    expect(out).toContain('No host registered.');
    expect(out).toContain('Read from etcd directly: no control host was asked.');
    expect(out.split('\n').at(-1)).toBe('May be stale: read from one etcd member without a quorum (…)');
  });

  it('a file state: its single host, or none', () => {
    const file: ControlStatus = {
      state: { backend: 'file', location: '/var/lib/factory', id: 'st-000000000002', rev: 3 },
      leader: null,
      hosts: [],
      self: { id: 'box-1', pid: 1, host: 'box', url: 'https://0.0.0.0:8443', startedAt: 'T', role: 'single', stateRev: 3 },
      source: 'host',
    };
    expect(renderControlStatus(file)).toBe(
      'State: /var/lib/factory (file, id st-000000000002, revision 3)\nHost: pid 1 on box, listening on https://0.0.0.0:8443, since T: the single host of this state (a file state has no election).',
    );
    expect(renderControlStatus({ ...file, self: null, source: 'directory' })).toBe(
      'State: /var/lib/factory (file, id st-000000000002, revision 3)\nNo control host serves it; start one with `factory control serve --state /var/lib/factory`.',
    );
  });

  it('leaseText', () => {
    expect(leaseText(undefined)).toBe('-');
    expect(leaseText({ id: '1', expired: true })).toBe('expired');
    expect(leaseText({ id: '1', ttlSec: 5 })).toBe('TTL 5 s, left unknown');
  });
});
