/**
 * renderControlStatus prints `factory control status` for people: the state, the leader with its
 * epoch and lease, the etcd members, every host and its view, and who answered. Scripts use --json.
 */
import type { ControlHostStatus, ControlStatus } from '../control/control-status.js';
import type { LeaseStatus } from '../state/etcd-status.js';
import { formatBytes, table } from './render.js';
import { firstLine } from './render-status.js';

/** leaseText is a lease as `TTL 2 s, 1 s left` (or `expired`, or `left unknown`). */
export function leaseText(l: LeaseStatus | undefined): string {
  if (!l) return '-';
  if (l.expired) return 'expired';
  const ttl = l.ttlSec !== undefined ? `TTL ${l.ttlSec} s, ` : '';
  return l.leftSec !== undefined ? `${ttl}${l.leftSec} s left` : `${ttl}left unknown`;
}

function followsText(h: ControlHostStatus): string {
  if (h.role === 'leader' || h.role === 'single') return '-';
  if (!h.leader) return 'nobody leads';
  return `pid ${h.leader.pid} on ${h.leader.host}`;
}

/** renderControlStatus is the human form of a ControlStatus. */
export function renderControlStatus(s: ControlStatus): string {
  const out: string[] = [];
  const onEtcd = s.state.backend === 'etcd';
  out.push(`State: ${s.state.location} (${onEtcd ? 'etcd' : 'file'}, id ${s.state.id}, revision ${s.state.rev})`);
  if (!onEtcd) {
    const h = s.self;
    if (!h) {
      out.push(`No control host serves it; start one with \`factory control serve --state ${s.state.location}\`.`);
      return out.join('\n');
    }
    out.push(`Host: pid ${h.pid} on ${h.host}${h.url ? `, listening on ${h.url}` : ''}, since ${h.startedAt}: the single host of this state (a file state has no election).`);
    return out.join('\n');
  }
  const l = s.leader;
  out.push(
    l
      ? `Leader: pid ${l.pid} on ${l.host}${l.url ? ` at ${l.url}` : ''}, epoch ${l.epoch}, since ${l.since}; lease ${l.lease.id} (${leaseText(l.lease)})${l.heartbeatAt ? `; last heartbeat ${l.heartbeatAt}` : ''}`
      : 'Leader: none (an election is under way, or no host runs)',
  );
  if (s.etcd) {
    out.push('');
    if (s.etcd.members.length) {
      out.push(
        table(
          ['ETCD MEMBER', 'ID', 'CLIENT URLS', 'HEALTH', 'RAFT LEADER', 'TERM', 'DB SIZE', 'ERROR'],
          s.etcd.members.map((m) => [
            m.name || '-',
            m.id || '-',
            m.clientUrls.join(',') || '-',
            m.healthy ? 'healthy' : 'unhealthy',
            m.leader ? 'yes' : '',
            m.raftTerm !== undefined ? String(m.raftTerm) : '-',
            m.dbSizeBytes !== undefined ? `${formatBytes(m.dbSizeBytes)}B` : '-',
            firstLine(m.error),
          ]),
        ),
      );
    }
    if (s.etcd.error) out.push(`etcd: ${firstLine(s.etcd.error)}`);
  }
  out.push('');
  out.push(
    s.hosts.length
      ? table(
          ['HOST', 'PID', 'URL', 'ROLE', 'EPOCH', 'FOLLOWS', 'LEASE'],
          s.hosts.map((h) => [h.id, String(h.pid), h.url ?? '-', h.role, h.epoch !== undefined ? String(h.epoch) : '-', followsText(h), leaseText(h.lease)]),
        )
      : 'No host registered.',
  );
  out.push('');
  const me = s.self;
  if (me) {
    const renewed = me.lastRenewalAt ? `; its lease last renewed at ${me.lastRenewalAt} (deadline ${me.renewDeadlineMs} ms)` : '';
    const role = me.role === 'follower' && me.epoch !== undefined ? `follower of epoch ${me.epoch}` : me.role === 'leader' ? `leader, epoch ${me.epoch}` : me.role;
    out.push(`Answered by ${me.id} (${role}), its copy of the state at revision ${me.stateRev}${renewed}.${me.registration?.error ? ` Its registration: ${firstLine(me.registration.error)}.` : ''}`);
  } else {
    out.push('Read from etcd directly: no control host was asked.');
  }
  if (s.stale) out.push(`May be stale: ${firstLine(s.stale)}`);
  return out.join('\n');
}
