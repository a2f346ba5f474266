/** The leader events: whom a new leader took over from, and how that one's term ended, as far as it can know. */
import { describe, expect, it } from 'vitest';
import { isLeaderEvent, leaderElectedEvent, leaderResignedEvent, predecessorOf } from '../../src/control/leader-events.js';
import type { EventInput, EventRecord } from '../../src/state/backend.js';

let rev = 0;
const rec = (e: EventInput): EventRecord => ({ ...e, rev: ++rev, at: '2026-01-01T00:00:00.000Z' });
const elected = (epoch: number) => rec(leaderElectedEvent({ epoch, pid: epoch * 10, host: 'h' }, undefined));
const resigned = (epoch: number) => rec(leaderResignedEvent({ epoch, pid: epoch * 10, host: 'h' }, 'stopped by SIGTERM'));

describe('predecessorOf', () => {
  it('the first leader of a state has none', () => {
    expect(predecessorOf(5, [])).toBeUndefined();
    expect(leaderElectedEvent({ epoch: 5, pid: 1, host: 'h', url: 'https://h:1' }, undefined)).toEqual({
      topic: 'state', kind: 'leader-elected', epoch: 5, by: 'control-host', message: 'pid 1 on h leads (epoch 5) at https://h:1; no earlier leader is known',
    });
  });

  it('a leader that was seen and did not resign: its lease expired', () => {
    const log = [elected(5), rec({ topic: 'task', kind: 'task-started', message: 'x' })];
    const p = predecessorOf(9, log, { epoch: 5, pid: 50, host: 'h', url: 'https://h:5' });
    expect(p).toEqual({ epoch: 5, pid: 50, host: 'h', url: 'https://h:5', ended: 'expired' });
    expect(leaderElectedEvent({ epoch: 9, pid: 90, host: 'g' }, p).message).toBe(
      'pid 90 on g leads (epoch 9); took over from epoch 5 (pid 50 on h at https://h:5), which did not resign: its lease expired (the host was killed, frozen or cut off from etcd, or could not renew in time)',
    );
  });

  it('a leader this host deposed (its heartbeat stood still): how long, unless the log says it resigned', () => {
    const p = predecessorOf(9, [elected(5)], { epoch: 5, pid: 50, host: 'h' }, { epoch: 5, silentMs: 1234 });
    expect(p).toEqual({ epoch: 5, pid: 50, host: 'h', ended: 'deposed', silentMs: 1234 });
    expect(leaderElectedEvent({ epoch: 9, pid: 90, host: 'g' }, p).message).toContain(
      'took over from epoch 5 (pid 50 on h), which did not resign: this host deposed it, its heartbeat had not moved for 1234 ms',
    );
    // another epoch deposed (an earlier round), or a resignation in the log: not this one's end
    expect(predecessorOf(9, [elected(5)], { epoch: 5, pid: 50, host: 'h' }, { epoch: 4, silentMs: 1 })?.ended).toBe('expired');
    expect(predecessorOf(9, [elected(5), resigned(5)], undefined, { epoch: 5, silentMs: 1 })?.ended).toBe('resigned');
  });

  it('a leader that resigned (its leader-resigned is in the log)', () => {
    const p = predecessorOf(9, [elected(5), resigned(5)], { epoch: 5, pid: 50, host: 'h' });
    expect(p?.ended).toBe('resigned');
    expect(leaderElectedEvent({ epoch: 9, pid: 90, host: 'g' }, p).message).toContain('took over from epoch 5 (pid 50 on h), which resigned (a clean stop)');
  });

  it('a host that saw no leader learns the last one from the log (newest older epoch), never its own or a newer one', () => {
    const log = [elected(3), resigned(3), elected(5), elected(12)];
    expect(predecessorOf(9, log)).toEqual({ epoch: 5, ended: 'expired' });
    expect(predecessorOf(4, log)).toEqual({ epoch: 3, ended: 'resigned' });
    // a view of a newer epoch (or its own) is not a predecessor: the log says who was before
    expect(predecessorOf(9, log, { epoch: 9, pid: 1, host: 'me' })).toEqual({ epoch: 5, ended: 'expired' });
    expect(leaderElectedEvent({ epoch: 9, pid: 90, host: 'g' }, predecessorOf(9, log)).message).toContain('took over from epoch 5 (a host)');
  });

  it('leader events carry their epoch; events without one (written before epochs were recorded) are not read', () => {
    expect(isLeaderEvent(elected(1))).toBe(true);
    expect(isLeaderEvent(rec({ topic: 'state', kind: 'leader-elected', message: 'pid 1 on h leads (epoch 7)' }))).toBe(false);
    expect(predecessorOf(9, [rec({ topic: 'state', kind: 'leader-elected', message: 'pid 1 on h leads (epoch 7)' })])).toBeUndefined();
    expect(resigned(4)).toMatchObject({ kind: 'leader-resigned', epoch: 4, message: 'pid 40 on h resigned the leadership (epoch 4): stopped by SIGTERM' });
  });
});
