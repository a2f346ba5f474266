/**
 * renderStatus's last lines: a state the store could not refresh (etcd without a quorum) says it may
 * be stale, with the reason and since when, instead of blaming a lock (a follower's own reason for
 * recording nothing stays); otherwise as before.
 */
import { describe, expect, it } from 'vitest';
import { renderStatus, type StatusView } from '../../src/cli/render-status.js';

const base: StatusView = { agents: [], tasks: [], events: [], refreshed: false, stateId: 'st-0123456789ab' };
const stale = { since: '2026-01-02T03:04:05.000Z', reason: 'etcd did not answer a read (members a:1, b:2, c:3): etcdserver: request timed out; this is the state as this host last saw it (revision 42)' };

describe('status says when the state may be stale', () => {
  it('a stale state says why and since when, cached or not, and no lock is blamed', () => {
    for (const cached of [true, false]) {
      const out = renderStatus({ ...base, stale }, { cached, events: 10 });
      expect(out.split('\n').slice(-1)[0]).toBe(`(the state may be stale: ${stale.reason}; since ${stale.since})`);
      expect(out).not.toContain('holds the lock');
    }
  });

  it('through a follower, why nothing was recorded comes first, then that the state may be stale', () => {
    const unrefreshed = 'this control host follows; the leader records what the agents report';
    const out = renderStatus({ ...base, stale, unrefreshed }, { cached: false, events: 10 }).split('\n');
    expect(out.slice(-3)).toEqual([`(state not refreshed: ${unrefreshed})`, '', `(the state may be stale: ${stale.reason}; since ${stale.since})`]);
  });

  it('a current state prints no such line; a live status not refreshed still names the lock', () => {
    expect(renderStatus({ ...base, refreshed: true }, { cached: false, events: 10 })).not.toMatch(/stale|holds the lock/);
    expect(renderStatus(base, { cached: true, events: 10 })).not.toMatch(/stale|holds the lock/);
    expect(renderStatus(base, { cached: false, events: 10 })).toContain('(state not refreshed: another factory holds the lock)');
  });
});
