/**
 * EtcdHostRegistry registers a control host on an etcd state: the key `<prefix>/hosts/<id>` on a
 * lease of its own, holding who the host is (pid, hostname, URL, when it started) and its view (its
 * role, the epoch it leads or follows, the leader it sees). Any host, and `factory control status`
 * without one, lists the others from these keys; a host that dies takes its key with it when its
 * lease expires. The key is not part of the state (EtcdKeys.parse ignores it, commits never touch
 * it): a follower writes its own registration and nothing else.
 *
 * The lease is renewed by explicit calls every ttl/3 (as the leader's is, never by the client's
 * automatic keep-alive); when etcd says the lease is gone (the host was cut off longer than the
 * TTL), the host registers again on a new lease. The key is written only when the view changes.
 */
import os from 'node:os';
import type { Etcd3, Lease } from 'etcd3';
import { etcdError, type EtcdKeys, type EtcdLocation } from './etcd-client.js';

/** HostRole is what a control host on etcd does: it leads, follows a leader, or stands while nobody leads. */
export type HostRole = 'leader' | 'follower' | 'candidate';

/** LeaderRef names a leading host as another host sees it. */
export interface LeaderRef {
  epoch: number;
  pid: number;
  host: string;
  url?: string;
}

/** HostView is what a host believes: its role, the epoch it leads or follows, and who leads. */
export interface HostView {
  role: HostRole;
  /** epoch is the epoch this host leads (leader) or follows (follower); absent while nobody leads. */
  epoch?: number;
  /** leader is the leader this host follows (followers only). */
  leader?: LeaderRef;
}

/** HostRecord is the value of `<prefix>/hosts/<id>`. */
export interface HostRecord extends HostView {
  id: string;
  pid: number;
  /** host is the machine's hostname. */
  host: string;
  /** url is the host's API on TCP (its --listen), when it has one. */
  url?: string;
  startedAt: string;
  /** lease is the registration's etcd lease (hex), ttlSec its time to live. */
  lease: string;
  ttlSec: number;
  /** viewAt is when the view last changed. */
  viewAt: string;
}

/** parseHostRecord reads a registration's value (undefined: not one). */
export function parseHostRecord(value: Buffer | string | undefined): HostRecord | undefined {
  if (value === undefined) return undefined;
  try {
    const r = JSON.parse(value.toString()) as HostRecord;
    return typeof r.pid === 'number' && typeof r.id === 'string' && typeof r.role === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** hostIdOf is a host's registration id: its hostname and pid (unique while it runs). */
export function hostIdOf(hostname = os.hostname(), pid = process.pid): string {
  return `${hostname.replace(/[^A-Za-z0-9._-]+/g, '_')}-${pid}`;
}

/** EtcdHostRegistryOptions tune a registration. */
export interface EtcdHostRegistryOptions {
  /** ttlSec is the registration lease's time to live (the hosts use their --lease-ttl). */
  ttlSec: number;
  url?: string;
  /** id names the registration (default hostIdOf(): hostname-pid). */
  id?: string;
  /** log receives a line when the registration is lost and made again, or cannot be made. */
  log?: (line: string) => void;
}

/** EtcdHostRegistry keeps this host's registration under `<prefix>/hosts/`. */
export class EtcdHostRegistry {
  readonly id: string;
  /** lastRenewalAt is when etcd last answered a renewal of the registration lease (ISO). */
  lastRenewalAt?: string;
  /** lastError is the last failure of a renewal or a write ('' when the last one worked). */
  lastError = '';
  private view: HostView = { role: 'candidate' };
  private viewAt = new Date().toISOString();
  private readonly startedAt = new Date().toISOString();
  private lease?: Lease;
  private leaseId?: string;
  private timer?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private renewing = false;
  /** written: the key holds the newest view (false after a write etcd did not answer). */
  private written = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: EtcdKeys,
    private readonly loc: EtcdLocation,
    private readonly opts: EtcdHostRegistryOptions,
  ) {
    this.id = opts.id ?? hostIdOf();
  }

  /** key is this host's registration key. */
  get key(): Buffer {
    return this.keys.host(this.id);
  }

  /** record is the registration as this host writes it now. */
  record(): HostRecord {
    return {
      id: this.id,
      pid: process.pid,
      host: os.hostname(),
      ...(this.opts.url ? { url: this.opts.url } : {}),
      startedAt: this.startedAt,
      lease: this.leaseId ?? '',
      ttlSec: this.opts.ttlSec,
      ...this.view,
      viewAt: this.viewAt,
    };
  }

  /**
   * register takes a lease and writes the key, and keeps the lease renewed from now on; it throws
   * when etcd does not answer (the renewals then try to register again).
   */
  async register(): Promise<void> {
    const every = Math.max(100, Math.floor((this.opts.ttlSec * 1000) / 3));
    this.timer ??= setInterval(() => void this.renew(), every);
    this.timer.unref();
    await this.serial(() => this.registerNow());
  }

  /**
   * update records a new view, written at once when it changed (in order with other writes); a write
   * etcd did not take is made again by the next renewal (lastError says why meanwhile).
   */
  update(view: HostView): Promise<void> {
    if (JSON.stringify(view) === JSON.stringify(this.view)) return this.chain;
    this.view = { ...view };
    this.viewAt = new Date().toISOString();
    return this.serial(() => this.put()).catch(() => undefined);
  }

  /** close stops renewing and revokes the lease: the key goes at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.chain;
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await lease.revoke().catch(() => undefined);
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch((err: unknown) => {
      this.lastError = (err as Error).message.split('\n')[0]!;
    });
    return next;
  }

  private async registerNow(): Promise<void> {
    if (this.closed) return;
    const old = this.lease;
    const lease = this.client.lease(this.opts.ttlSec, { autoKeepAlive: false });
    lease.on('lost', () => undefined); // renewals are ours
    try {
      this.leaseId = String(await lease.grant());
    } catch (err) {
      throw etcdError(err, 'a lease for the host registration', this.loc);
    }
    this.lease = lease;
    if (old) void old.revoke().catch(() => undefined);
    await this.put();
    this.lastRenewalAt = new Date().toISOString();
  }

  private async put(): Promise<void> {
    if (this.closed || !this.leaseId) return;
    this.written = false;
    try {
      await this.client.kv.put({ key: this.key, value: Buffer.from(JSON.stringify(this.record())), lease: this.leaseId });
      this.written = true;
      this.lastError = '';
    } catch (err) {
      throw etcdError(err, 'writing the host registration', this.loc);
    }
  }

  private async renew(): Promise<void> {
    if (this.closed || this.renewing) return;
    this.renewing = true;
    try {
      if (!this.lease) await this.serial(() => this.registerNow()).catch(() => undefined); // not registered yet (etcd did not answer)
      else {
        await this.renewOnce();
        if (!this.written && this.lease) await this.serial(() => this.put()).catch(() => undefined); // a view etcd did not take
      }
    } finally {
      this.renewing = false;
    }
  }

  private async renewOnce(): Promise<void> {
    try {
      const res = await this.lease!.keepaliveOnce({ deadline: new Date(Date.now() + Math.max(500, (this.opts.ttlSec * 1000) / 2)) });
      if (Number(res.TTL) > 0) {
        this.lastRenewalAt = new Date().toISOString();
        this.lastError = '';
        return;
      }
      this.lastError = `etcd says the registration lease ${this.leaseId} expired`;
    } catch (err) {
      this.lastError = (err as Error).message.split('\n')[0]!;
      if (!/lease.*(not found|expired|invalid)|EtcdLeaseInvalid/i.test(this.lastError)) return; // etcd did not answer: try again next time
    }
    // the lease is gone (cut off longer than its TTL): register again on a new one
    this.opts.log?.(`the host registration ${this.id} lost its lease (${this.lastError}): registering again`);
    await this.serial(() => this.registerNow()).catch((err: unknown) => this.opts.log?.(`cannot register host ${this.id} again: ${(err as Error).message}`));
  }
}
