/**
 * ControlStatus is what `factory control status` and `GET /v1/control` show: where the state is,
 * the etcd members, the leading control host with its epoch and lease, every registered host with its
 * view (role, epoch, the leader it follows), and the view of the host that answered. A host on a
 * file state is the only one: no etcd section, no leader, no election.
 */
import os from 'node:os';
import { hostIdOf, type EtcdHostRegistry, type HostRole, type LeaderRef } from '../state/etcd-hosts.js';
import type { EtcdLocation } from '../state/etcd-client.js';
import type { EtcdLeader } from '../state/etcd-leader.js';
import { leaseHex, type EtcdClusterStatus, type EtcdStateStatus, type EtcdStatusReader, type LeaderStatus, type LeaseStatus } from '../state/etcd-status.js';

/** ControlRole is a host's role: on etcd it leads, follows or stands (candidate); on a file state it is the single host. */
export type ControlRole = HostRole | 'single';

/** ControlHostStatus is one control host and its view. */
export interface ControlHostStatus {
  id: string;
  pid: number;
  /** host is the machine's hostname. */
  host: string;
  url?: string;
  startedAt: string;
  role: ControlRole;
  /** epoch is the epoch it leads or follows (absent on a file state, or while nobody leads). */
  epoch?: number;
  /** leader is the leader it follows, as it last read it. */
  leader?: LeaderRef;
  /** viewAt is when its view last changed. */
  viewAt?: string;
  /** lease is its registration's lease (etcd: the key goes with it when the host dies). */
  lease?: LeaseStatus;
}

/** SelfStatus is the answering host's own view, with what only it knows. */
export interface SelfStatus extends ControlHostStatus {
  /** stateRev is the newest revision in this host's copy of the state. */
  stateRev: number;
  /** renewDeadlineMs is how long it may lead without a renewal answered (etcd). */
  renewDeadlineMs?: number;
  /** lastRenewalAt is when the newest renewal of its leader lease that etcd answered was sent (while it leads). */
  lastRenewalAt?: string;
  /** registration is its own registration: when etcd last renewed its lease, and the last error. */
  registration?: { lastRenewalAt?: string; error?: string };
}

/** ControlStatusSource says who answered: a control host, etcd read directly, or a state directory no host serves. */
export type ControlStatusSource = 'host' | 'etcd' | 'directory';

/** ControlStatus is the answer of `GET /v1/control` and `factory control status --json`. */
export interface ControlStatus {
  state: { backend: 'file' | 'etcd'; location: string; id: string; rev: number };
  /** etcd is the cluster of an etcd state (absent on a file state). */
  etcd?: EtcdClusterStatus;
  /** leader is the leading host with its epoch and lease (null: nobody leads, or a file state). */
  leader: LeaderStatus | null;
  hosts: ControlHostStatus[];
  /** self is the view of the host that answered (null: no host answered). */
  self: SelfStatus | null;
  source: ControlStatusSource;
  /** stale says why some of it may be out of date (etcd answered without a quorum). */
  stale?: string;
}

/** controlStatusOfEtcd is the status of an etcd state as read from etcd, answered by self (or by nobody). */
export function controlStatusOfEtcd(location: string, read: EtcdStateStatus, self: SelfStatus | null): ControlStatus {
  const hosts: ControlHostStatus[] = read.hosts.map((h) => ({ ...h }));
  return {
    state: { backend: 'etcd', location, id: read.state.id, rev: read.state.rev },
    etcd: read.etcd,
    leader: read.leader,
    hosts,
    self,
    source: self ? 'host' : 'etcd',
    ...(read.stale ? { stale: read.stale } : {}),
  };
}

/** singleHost is the view of a host on a file state (the only one: it does everything). */
export function singleHost(opts: { url?: string; startedAt: string; stateRev: number }): SelfStatus {
  return { id: hostIdOf(), pid: process.pid, host: os.hostname(), ...(opts.url ? { url: opts.url } : {}), startedAt: opts.startedAt, role: 'single', stateRev: opts.stateRev };
}

/** controlStatusOfFile is the status of a file state: its single host (self), or none when no host serves it. */
export function controlStatusOfFile(state: { location: string; id: string; rev: number }, self: SelfStatus | null): ControlStatus {
  const { stateRev: _rev, renewDeadlineMs: _d, lastRenewalAt: _l, registration: _r, ...host } = self ?? ({} as SelfStatus);
  return { state: { backend: 'file', ...state }, leader: null, hosts: self ? [host] : [], self, source: self ? 'host' : 'directory' };
}

/**
 * etcdSelfStatus is the view of a host on etcd: its registration (absent while it starts: it stands)
 * and its election (the renewal deadline, and while it leads the last renewal etcd answered).
 */
export function etcdSelfStatus(registry: EtcdHostRegistry | undefined, election: EtcdLeader | undefined, stateRev: number, startedAt: string): SelfStatus {
  if (!registry) return { id: hostIdOf(), pid: process.pid, host: os.hostname(), startedAt, role: 'candidate', stateRev };
  const { lease, ttlSec, ...view } = registry.record();
  return {
    ...view,
    ...(lease ? { lease: { id: leaseHex(lease), ttlSec } } : {}),
    stateRev,
    ...(election ? { renewDeadlineMs: election.deadlineMs } : {}),
    ...(election?.lastRenewal ? { lastRenewalAt: election.lastRenewal } : {}),
    registration: { ...(registry.lastRenewalAt ? { lastRenewalAt: registry.lastRenewalAt } : {}), ...(registry.lastError ? { error: registry.lastError } : {}) },
  };
}

/**
 * etcdHostStatus is GET /v1/control on a host on etcd: read from etcd; when no member answers at
 * all, the host's own view (the leader as it last read it, no hosts), said to be stale.
 */
export async function etcdHostStatus(reader: EtcdStatusReader, state: { location: string; id: string; rev: number }, loc: EtcdLocation, self: SelfStatus, election?: EtcdLeader): Promise<ControlStatus> {
  try {
    return controlStatusOfEtcd(state.location, await reader.read(), self);
  } catch (err) {
    const why = (err as Error).message;
    const now = election?.current;
    return {
      state: { backend: 'etcd', ...state },
      etcd: { endpoints: loc.endpoints, prefix: loc.prefix, members: [], error: why },
      leader: now ? { epoch: now.epoch, pid: now.record.pid, host: now.record.host, ...(now.record.url ? { url: now.record.url } : {}), since: now.record.since, lease: { id: leaseHex(now.record.lease) } } : null,
      hosts: [],
      self,
      source: 'host',
      stale: `etcd did not answer (${why}): the leader is this host's last view of it, the hosts are unknown`,
    };
  }
}
