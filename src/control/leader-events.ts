/**
 * The events that tell a leader change on etcd (topic `state`, each with the `epoch` it is about),
 * written only by a leader, under its fence:
 *
 * - `leader-elected`: the new leader's first write. It names whom it took over from, as far as it
 *   can know: the last leader it saw (else the last `leader-elected` in the log), and how that one
 *   ended: it resigned (a `leader-resigned` of that epoch is in the log), this host deposed it (its
 *   heartbeat stood still past the deadline, etcd-leader.ts), or its lease expired.
 * - `leader-resigned`: a leader stopping cleanly (SIGTERM), before it gives up its lease.
 *
 * A leader that lost its lease writes nothing (it is fenced, and exits): its successor says so.
 */
import type { EventInput, EventRecord } from '../state/backend.js';

/** LeaderIdentity names a leading host. */
export interface LeaderIdentity {
  epoch: number;
  pid?: number;
  host?: string;
  url?: string;
}

/** PredecessorEnd is how the previous leader's term ended, as its successor can tell. */
export type PredecessorEnd = 'resigned' | 'deposed' | 'expired';

/** Predecessor is the leader before a new one, and how its term ended. */
export interface Predecessor extends LeaderIdentity {
  ended: PredecessorEnd;
  /** silentMs is how long its heartbeat had not moved when this host deposed it (ended `deposed`). */
  silentMs?: number;
}

/** isLeaderEvent says whether an event is one of these (for the log scans below). */
export function isLeaderEvent(e: EventRecord): boolean {
  return e.topic === 'state' && (e.kind === 'leader-elected' || e.kind === 'leader-resigned') && typeof e.epoch === 'number';
}

/**
 * predecessorOf finds whom the leader of epoch took over from: seen (the last other leader this host
 * read while it stood), else the newest `leader-elected` of an older epoch in the log; ended is
 * `resigned` when the log holds that epoch's `leader-resigned`, `deposed` when this host deposed
 * that epoch (deposed), else `expired`. Undefined: none known.
 */
export function predecessorOf(epoch: number, log: EventRecord[], seen?: LeaderIdentity, deposed?: { epoch: number; silentMs: number }): Predecessor | undefined {
  const events = log.filter(isLeaderEvent);
  let prev: LeaderIdentity | undefined = seen && seen.epoch < epoch ? seen : undefined;
  if (!prev) {
    const elected = events.filter((e) => e.kind === 'leader-elected' && e.epoch! < epoch).at(-1);
    if (elected) prev = { epoch: elected.epoch! };
  }
  if (!prev) return undefined;
  if (events.some((e) => e.kind === 'leader-resigned' && e.epoch === prev.epoch)) return { ...prev, ended: 'resigned' };
  if (deposed?.epoch === prev.epoch) return { ...prev, ended: 'deposed', silentMs: deposed.silentMs };
  return { ...prev, ended: 'expired' };
}

const HOW: Record<PredecessorEnd, (p: Predecessor) => string> = {
  resigned: () => 'resigned (a clean stop)',
  deposed: (p) => `did not resign: this host deposed it, its heartbeat had not moved for ${p.silentMs} ms (the host was killed, frozen or cut off from etcd; its own watchdog stops it before that)`,
  expired: () => 'did not resign: its lease expired (the host was killed, frozen or cut off from etcd, or could not renew in time)',
};

function who(l: LeaderIdentity): string {
  return l.pid !== undefined ? `pid ${l.pid}${l.host ? ` on ${l.host}` : ''}` : 'a host';
}

/** leaderElectedEvent is the new leader's first write: who leads, from when, and whom it took over from. */
export function leaderElectedEvent(me: LeaderIdentity, before: Predecessor | undefined): EventInput {
  const took = before
    ? `; took over from epoch ${before.epoch} (${who(before)}${before.url ? ` at ${before.url}` : ''}), which ${HOW[before.ended](before)}`
    : '; no earlier leader is known';
  return {
    topic: 'state',
    kind: 'leader-elected',
    epoch: me.epoch,
    message: `${who(me)} leads (epoch ${me.epoch})${me.url ? ` at ${me.url}` : ''}${took}`,
    by: 'control-host',
  };
}

/** leaderResignedEvent is a leader's last write when it stops cleanly. */
export function leaderResignedEvent(me: LeaderIdentity, why: string): EventInput {
  return { topic: 'state', kind: 'leader-resigned', epoch: me.epoch, message: `${who(me)} resigned the leadership (epoch ${me.epoch}): ${why}`, by: 'control-host' };
}
