/**
 * EtcdStatusReader reads what `factory control status` shows of an etcd state, read-only: the etcd
 * members (the member list, and each member's own status asked of it alone: healthy, which member
 * it sees leading, its raft term and database size), the leading control host (`<prefix>/leader`)
 * with its epoch, what is left of its lease and its newest heartbeat (`<prefix>/leader-beat`), and the registered hosts (`<prefix>/hosts/`, see
 * etcd-hosts.ts) with theirs. A member that does not answer is reported with the error, never
 * waited on past FACTORY_ETCD_TIMEOUT (at most 1 s per member here).
 *
 * A control host keeps one reader (its member clients stay open); `factory control status` without
 * a host opens one on the location alone (it never loads the state's records).
 */
import type { Etcd3, IRangeRequest, IRangeResponse } from 'etcd3';
import { StateError } from '../errors.js';
import {
  connectEtcd,
  etcdClientOptions,
  etcdError,
  etcdSettingsFromEnv,
  EtcdKeys,
  formatEtcdLocation,
  parseCounter,
  parseEtcdLocation,
  type EtcdLocation,
  type EtcdSettings,
} from './etcd-client.js';
import { parseHostRecord, type HostRecord } from './etcd-hosts.js';
import type { LeaderRecord } from './etcd-leader.js';

/** EtcdMemberStatus is one etcd member: from the member list, and as it answers for itself. */
export interface EtcdMemberStatus {
  /** id is the member's id (hex). */
  id: string;
  name: string;
  clientUrls: string[];
  peerUrls: string[];
  learner: boolean;
  /** healthy: it answered its status, sees a raft leader, and raises no alarm. */
  healthy: boolean;
  /** leader: this member is the raft leader (as the members that answered see it). */
  leader: boolean;
  version?: string;
  dbSizeBytes?: number;
  raftTerm?: number;
  raftIndex?: number;
  /** error is why it is not healthy: no answer, no raft leader, or its alarms. */
  error?: string;
}

/** EtcdClusterStatus is the etcd side of a status: the state's endpoints and prefix and the members. */
export interface EtcdClusterStatus {
  endpoints: string[];
  prefix: string;
  members: EtcdMemberStatus[];
  /** leaderMember is the name (else id) of the raft leader, when the members that answered agree on one. */
  leaderMember?: string;
  /** error is set when the member list could not be read (then members are the endpoints, asked one by one). */
  error?: string;
}

/** LeaseStatus is an etcd lease as etcd answers for it now. */
export interface LeaseStatus {
  /** id is the lease's id in hex, as etcdctl shows it. */
  id: string;
  /** ttlSec is the lease's granted time to live. */
  ttlSec?: number;
  /** leftSec is how long it has left (whole seconds, as etcd says); absent when etcd did not answer. */
  leftSec?: number;
  /** expired: etcd no longer knows the lease (its key is gone, or goes now). */
  expired?: boolean;
}

/** LeaderStatus is the leading control host: its record, epoch and lease. */
export interface LeaderStatus {
  epoch: number;
  pid: number;
  host: string;
  url?: string;
  since: string;
  lease: LeaseStatus;
  /** heartbeatAt is when the leader sent its newest heartbeat that etcd wrote (`<prefix>/leader-beat`; it renews every ttl/10). */
  heartbeatAt?: string;
}

/** RegisteredHost is a host's registration with its lease as etcd answers for it. */
export type RegisteredHost = Omit<HostRecord, 'lease' | 'ttlSec'> & { lease: LeaseStatus };

/** EtcdStateStatus is everything the reader reads at once. */
export interface EtcdStateStatus {
  /** state is the state's id and newest revision, read from etcd (meta/id, meta/rev). */
  state: { id: string; rev: number };
  etcd: EtcdClusterStatus;
  leader: LeaderStatus | null;
  hosts: RegisteredHost[];
  /** stale says why some of it was read from one member alone (no quorum): it may be out of date. */
  stale?: string;
}

/** leaseHex shows a lease id (decimal, as the keys hold it) in hex, as etcdctl does; anything else as it is. */
export function leaseHex(decimalId: string): string {
  return /^\d+$/.test(decimalId) ? BigInt(decimalId).toString(16) : decimalId;
}

/** MEMBER_TIMEOUT_MS bounds the wait for one member's own status. */
const MEMBER_TIMEOUT_MS = 1000;

function hostPortOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.host || undefined;
  } catch {
    return undefined;
  }
}

/** EtcdStatusReader reads the members, the leader and the hosts of one etcd state. */
export class EtcdStatusReader {
  private readonly memberClients = new Map<string, Etcd3>();
  private readonly keys: EtcdKeys;

  constructor(
    private readonly client: Etcd3,
    readonly loc: EtcdLocation,
    private readonly settings: EtcdSettings,
    /** owned: close() closes client too (a reader opened on a location alone). */
    private readonly owned = false,
  ) {
    this.keys = new EtcdKeys(loc.prefix);
  }

  /** open connects to the location's members for a reader of its own (no state is loaded). */
  static async open(location: string, settings: Partial<EtcdSettings> = {}): Promise<EtcdStatusReader> {
    const loc = parseEtcdLocation(location);
    const s = { ...etcdSettingsFromEnv(), ...settings };
    return new EtcdStatusReader(await connectEtcd(loc, s), loc, s, true);
  }

  /** location is the state's `etcd://` URL. */
  get location(): string {
    return formatEtcdLocation(this.loc);
  }

  /** read reads the state's id and revision, the members, the leader and the hosts (in parallel). */
  async read(): Promise<EtcdStateStatus> {
    const stale: string[] = [];
    const [state, etcd, leader, hosts] = await Promise.all([this.state(stale), this.members(), this.leader(stale), this.hosts(stale)]);
    return { state, etcd, leader, hosts, ...(stale.length ? { stale: stale[0] } : {}) };
  }

  /**
   * range reads keys with a quorum read; when that fails (no quorum), from one member alone
   * (serializable: it may be out of date), saying why in stale; throws when no member answers.
   */
  private async range(req: IRangeRequest, what: string, stale?: string[]): Promise<IRangeResponse> {
    try {
      return await this.client.kv.range(req);
    } catch (err) {
      const why = etcdError(err, what, this.loc);
      if (!stale) throw why;
      try {
        const res = await this.client.kv.range({ ...req, serializable: true });
        stale.push(`read from one etcd member without a quorum (${why.message})`);
        return res;
      } catch {
        throw why;
      }
    }
  }

  /** state reads the state's id and newest revision; E_STATE_MISSING when the prefix holds no state. */
  async state(stale?: string[]): Promise<{ id: string; rev: number }> {
    const what = `reading state ${this.location}`;
    const res = await Promise.all([this.range({ key: this.keys.id }, what, stale), this.range({ key: this.keys.counter }, what, stale)]);
    const id = res[0].kvs[0]?.value.toString('utf8');
    if (!id) throw new StateError(`there is no state at ${this.location}`, { code: 'E_STATE_MISSING', hint: 'check the endpoints and the prefix (a host creates the state when it first starts on it)' });
    return { id, rev: parseCounter(res[1].kvs[0]).rev };
  }

  /** members lists the etcd members, each asked for its own status. */
  async members(): Promise<EtcdClusterStatus> {
    let listed: EtcdMemberStatus[];
    let error: string | undefined;
    try {
      const res = await this.client.cluster.memberList({});
      listed = res.members.map((m) => ({ id: BigInt(m.ID).toString(16), name: m.name, clientUrls: m.clientURLs, peerUrls: m.peerURLs, learner: Boolean(m.isLearner), healthy: false, leader: false }));
    } catch (err) {
      error = etcdError(err, 'listing the etcd members', this.loc).message;
      // no list: ask each endpoint of the location for itself
      listed = this.loc.endpoints.map((e) => ({ id: '', name: e, clientUrls: [`http://${e}`], peerUrls: [], learner: false, healthy: false, leader: false }));
    }
    const seen = await Promise.all(listed.map((m) => this.memberStatus(m)));
    // the raft leader as the members that answered see it (they agree unless an election runs)
    const votes = new Map<string, number>();
    for (const s of seen) if (s.leaderId) votes.set(s.leaderId, (votes.get(s.leaderId) ?? 0) + 1);
    const top = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    const members = seen.map(({ leaderId: _l, ...m }) => ({ ...m, leader: top !== undefined && m.id === top }));
    const lead = members.find((m) => m.leader);
    return { endpoints: this.loc.endpoints, prefix: this.loc.prefix, members, ...(lead ? { leaderMember: lead.name || lead.id } : {}), ...(error ? { error } : {}) };
  }

  private async memberStatus(m: EtcdMemberStatus): Promise<EtcdMemberStatus & { leaderId?: string }> {
    const endpoint = m.clientUrls.map(hostPortOf).find(Boolean);
    if (!endpoint) return { ...m, error: m.name ? 'no client URL' : 'not started' };
    try {
      const client = await this.memberClient(endpoint);
      const s = await client.maintenance.status({ deadline: Date.now() + Math.min(this.settings.timeoutMs, MEMBER_TIMEOUT_MS) });
      const id = BigInt(s.header.member_id).toString(16);
      const leaderId = s.leader && s.leader !== '0' ? BigInt(s.leader).toString(16) : undefined;
      const alarms = (s.errors ?? []).filter(Boolean);
      const problem = alarms.length ? alarms.join('; ') : leaderId ? undefined : 'no raft leader (quorum lost?)';
      return {
        ...m,
        id: m.id || id,
        healthy: problem === undefined,
        version: s.version,
        dbSizeBytes: Number(s.dbSize),
        raftTerm: Number(s.raftTerm),
        raftIndex: Number(s.raftIndex),
        ...(problem ? { error: problem } : {}),
        ...(leaderId ? { leaderId } : {}),
      };
    } catch (err) {
      return { ...m, healthy: false, error: `no answer from ${endpoint}: ${String((err as Error).message).split('\n')[0]}` };
    }
  }

  /** memberClient is a client of one member alone (kept for the next read). */
  private async memberClient(endpoint: string): Promise<Etcd3> {
    let c = this.memberClients.get(endpoint);
    if (!c) {
      const { Etcd3 } = await import('etcd3');
      const one = { endpoints: [endpoint], prefix: this.loc.prefix };
      c = new Etcd3(await etcdClientOptions(one, { ...this.settings, timeoutMs: Math.min(this.settings.timeoutMs, MEMBER_TIMEOUT_MS) }));
      this.memberClients.set(endpoint, c);
    }
    return c;
  }

  /** lease asks etcd how long a lease (its decimal id, as the keys hold it) has left. */
  async lease(decimalId: string): Promise<LeaseStatus> {
    if (!/^\d+$/.test(decimalId)) return { id: decimalId };
    const id = leaseHex(decimalId);
    try {
      const r = await this.client.leaseClient.leaseTimeToLive({ ID: decimalId });
      const left = Number(r.TTL);
      return left < 0 ? { id, expired: true } : { id, ttlSec: Number(r.grantedTTL), leftSec: left };
    } catch (err) {
      if (/lease not found/i.test(String((err as Error).message))) return { id, expired: true };
      return { id };
    }
  }

  /** leader reads who leads (null: nobody) with its lease. */
  async leader(stale?: string[]): Promise<LeaderStatus | null> {
    const [leader, beat] = await Promise.all([this.range({ key: this.keys.leader }, 'reading the leader key', stale), this.range({ key: this.keys.leaderBeat }, 'reading the leader heartbeat', stale)]);
    const kv = leader.kvs[0];
    if (!kv) return null;
    let rec: LeaderRecord;
    try {
      rec = JSON.parse(kv.value.toString('utf8')) as LeaderRecord;
    } catch {
      return null;
    }
    const leaseId = rec.lease || (kv.lease !== '0' ? String(kv.lease) : '');
    let heartbeatAt: string | undefined;
    try {
      const at = (JSON.parse(beat.kvs[0]?.value.toString('utf8') ?? '{}') as { at?: unknown }).at;
      if (typeof at === 'string') heartbeatAt = at;
    } catch {
      // no heartbeat, or not ours: left out
    }
    return { epoch: Number(kv.create_revision), pid: rec.pid, host: rec.host, ...(rec.url ? { url: rec.url } : {}), since: rec.since, lease: await this.lease(leaseId), ...(heartbeatAt ? { heartbeatAt } : {}) };
  }

  /** hosts lists the registered control hosts with their leases, by id. */
  async hosts(stale?: string[]): Promise<RegisteredHost[]> {
    const { kvs } = await this.range({ key: this.keys.hosts, range_end: this.keys.hostsEnd }, 'reading the host registrations', stale);
    const recs = kvs.map((kv) => parseHostRecord(kv.value)).filter((r): r is HostRecord => r !== undefined);
    const out = await Promise.all(
      recs.map(async ({ lease, ttlSec, ...r }) => {
        const l = await this.lease(lease);
        return { ...r, lease: { ...l, ttlSec: l.ttlSec ?? ttlSec } };
      }),
    );
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** close closes the member clients (and the client when the reader opened it). */
  close(): void {
    for (const c of this.memberClients.values()) c.close();
    this.memberClients.clear();
    if (this.owned) this.client.close();
  }
}
