/**
 * EtcdLeader elects one control host among those on one etcd state: the key `<prefix>/leader`,
 * created only when absent, on a lease of its own (`--lease-ttl`, 5 s by default). The leader's epoch
 * is that key's create revision: it grows with every new leader, commits compare it, and executors
 * refuse calls that carry an older one.
 *
 * The leader renews itself, never through the client's automatic keep-alive: every renewal (each
 * bounded by its own timer) keeps the lease alive and rewrites the heartbeat key
 * `<prefix>/leader-beat` in a transaction that holds only while the leader key is still its own.
 * When no heartbeat sent in the last `deadlineMs` (0.4 × ttl by default) has been written, or etcd
 * says the lease or the key is gone, it calls onLost once with why: the host stops acting at once
 * and exits. A half-open connection never holds it: the watchdog is a timer due when the deadline of
 * the newest written heartbeat passes (re-armed by each one), whatever the calls do.
 *
 * A standby does not wait for a dead leader's lease to expire (up to the whole TTL after its last
 * renewal). It watches the heartbeat's revision; once the revision has not moved for deadlineMs plus
 * a margin (graceMs), the leader has stopped acting by its own watchdog, whatever happened to it,
 * and the standby deletes the leader key in a transaction that holds only if the heartbeat is still
 * the one it saw. Then it stands. A leader that was merely slow loses nothing it acknowledged: its
 * commits and executor calls are fenced by epoch, and it exits when its next heartbeat is refused.
 */
import os from 'node:os';
import type { Etcd3, Lease } from 'etcd3';
import { StateError } from '../errors.js';
import { etcdError, type EtcdLocation } from './etcd-client.js';

/** LeaderRecord is the leader key's value: who leads and where clients reach it. */
export interface LeaderRecord {
  pid: number;
  host: string;
  since: string;
  lease: string;
  /** url is the leader's API on TCP (its --listen), told to clients that wrote to a follower. */
  url?: string;
}

/** LeaderView is who leads, as last read: the record and the epoch (the key's create revision). */
export interface LeaderView {
  epoch: number;
  record: LeaderRecord;
}

/** EtcdLeaderOptions tune an election. */
export interface EtcdLeaderOptions {
  /** ttlSec is the leader lease's time to live in seconds. */
  ttlSec: number;
  /** deadlineMs is how long the leader may go without a heartbeat written (default 0.4 × ttl). */
  deadlineMs?: number;
  /** graceMs is what a standby adds to deadlineMs before it deposes a silent leader (default deadlineMs/5, at least 200 ms). */
  graceMs?: number;
  /** url is this host's API URL, published in the leader key. */
  url?: string;
  /** pollMs is how often a standby reads the leader key (default 100 ms). */
  pollMs?: number;
  /** onLost is called once when the leader can no longer prove its lease holds. */
  onLost: (why: string) => void;
}

function parseRecord(value: Buffer | undefined): LeaderRecord | undefined {
  if (!value) return undefined;
  try {
    const r = JSON.parse(value.toString('utf8')) as LeaderRecord;
    return typeof r.pid === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** withTimeout rejects when p has not settled within ms (the call itself may go on, unheard). */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** SLOW_READ_MS is how long a read of the leader key may wait before a follower says etcd does not answer it (a read takes milliseconds). */
const SLOW_READ_MS = 250;

/** EtcdLeader campaigns for, holds and watches over the leadership of one etcd state. */
export class EtcdLeader {
  /** epoch is this host's epoch while it leads (undefined: it does not). */
  epoch?: number;
  /** current is who leads as last read (a standby's hint for clients). */
  current?: LeaderView;
  /** previous is the last other host this one saw leading (before it led itself: whom it took over from). */
  previous?: LeaderView;
  private lease?: Lease;
  private leaseId?: string;
  private lastRenewSent = 0;
  private lastError = '';
  /** unreachable is since when, and with what error, this host's calls of the election fail (undefined: the last read was answered). */
  private unreachable?: { since: number; error: string };
  /** readSent is when the read of the leader key waiting for etcd's answer was sent (undefined: none waits). */
  private readSent?: number;
  private timers: NodeJS.Timeout[] = [];
  /** watchdog is due when the deadline of the newest written heartbeat passes. */
  private watchdog?: NodeJS.Timeout;
  private lostOnce = false;
  private stopped = false;
  /** silent is the leader a standby watches: its epoch, its heartbeat's revision, and since when that has not moved. */
  private silent?: { epoch: number; beat: number; since: number };
  readonly deadlineMs: number;
  readonly graceMs: number;
  /** deposed is the leader this host deposed before it led: its epoch and how long its heartbeat had not moved. */
  deposed?: { epoch: number; silentMs: number };

  constructor(
    private readonly client: Etcd3,
    private readonly keys: { leader: Buffer; beat: Buffer },
    private readonly loc: EtcdLocation,
    private readonly opts: EtcdLeaderOptions,
  ) {
    this.deadlineMs = opts.deadlineMs ?? Math.max(200, Math.floor(opts.ttlSec * 1000 * 0.4));
    this.graceMs = opts.graceMs ?? Math.max(200, Math.floor(this.deadlineMs / 5));
  }

  /** lastRenewal is when the newest heartbeat that etcd wrote was sent (ISO; undefined: not leading). */
  get lastRenewal(): string | undefined {
    return this.epoch !== undefined && this.lastRenewSent ? new Date(this.lastRenewSent).toISOString() : undefined;
  }

  /**
   * etcdTrouble says, while this host's reads of the leader key fail (etcd down, no quorum, a cut
   * link), since when and with what error, or how long the one sent has waited when that is more
   * than SLOW_READ_MS (before its own deadline fails it); undefined once a read is answered. Who
   * leads then is not known here: `current` is only the last answer.
   */
  get etcdTrouble(): string | undefined {
    const members = `etcd (members ${this.loc.endpoints.join(', ')})`;
    const u = this.unreachable;
    if (u) return `${members} has not answered this host since ${new Date(u.since).toISOString()} (${u.error}): who leads now is not known here`;
    const waited = this.readSent === undefined ? 0 : Date.now() - this.readSent;
    if (waited > SLOW_READ_MS) return `${members} has not answered this host's read of the leader key for ${waited} ms: who leads now is not known here`;
    return undefined;
  }

  /** read reads who leads now (undefined: nobody), and the revision of its heartbeat (0: none). */
  async read(): Promise<LeaderView | undefined> {
    return (await this.readBeat()).view;
  }

  private async readBeat(): Promise<{ view?: LeaderView; beat: number }> {
    this.readSent = Date.now();
    let r;
    try {
      r = await withTimeout(
        this.client.kv.txn({ compare: [], success: [{ request_range: { key: this.keys.leader } }, { request_range: { key: this.keys.beat } }], failure: [] }),
        this.deadlineMs,
        'reading the leader key',
      );
    } finally {
      this.readSent = undefined;
    }
    this.unreachable = undefined;
    const kv = r.responses[0]?.response_range.kvs[0];
    const record = parseRecord(kv?.value);
    this.current = kv && record ? { epoch: Number(kv.create_revision), record } : undefined;
    if (this.current && this.current.epoch !== this.epoch) this.previous = this.current;
    return { view: this.current, beat: Number(r.responses[1]?.response_range.kvs[0]?.mod_revision ?? 0) };
  }

  /**
   * deposeIfSilent deletes the leader key when the leader's heartbeat has not moved for deadlineMs +
   * graceMs as this standby saw it (so the leader's own watchdog has stopped it), and only if both the
   * key and the heartbeat are still those it saw. True when it did.
   */
  private async deposeIfSilent(view: LeaderView, beat: number): Promise<boolean> {
    const now = Date.now();
    const s = this.silent;
    if (!s || s.epoch !== view.epoch || s.beat !== beat) {
      this.silent = { epoch: view.epoch, beat, since: now };
      return false;
    }
    if (now - s.since < this.deadlineMs + this.graceMs) return false;
    const res = await withTimeout(
      this.client.kv.txn({
        compare: [
          { key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: view.epoch },
          { key: this.keys.beat, target: 'Mod', result: 'Equal', mod_revision: beat },
        ],
        success: [{ request_delete_range: { key: this.keys.leader } }, { request_delete_range: { key: this.keys.beat } }],
        failure: [],
      }),
      this.deadlineMs,
      'deposing a silent leader',
    );
    this.silent = undefined;
    if (res.succeeded) this.deposed = { epoch: view.epoch, silentMs: now - s.since };
    return res.succeeded;
  }

  /** campaign waits until this host leads (polling the key while another one does) and returns its epoch. */
  async campaign(onWaiting?: (leader: LeaderView | undefined) => void): Promise<number> {
    let told = -1;
    while (!this.stopped) {
      let view: LeaderView | undefined;
      try {
        const seen = await this.readBeat();
        view = seen.view;
        if (view && view.epoch !== this.epoch && (await this.deposeIfSilent(view, seen.beat))) view = undefined;
        if (!view) {
          const epoch = await this.tryLead();
          if (epoch !== undefined) return epoch;
          view = await this.read();
        }
      } catch (err) {
        this.lastError = (err as Error).message.split('\n')[0]!;
        this.unreachable = { since: this.unreachable?.since ?? Date.now(), error: this.lastError };
      }
      if ((view?.epoch ?? 0) !== told) {
        told = view?.epoch ?? 0;
        onWaiting?.(view);
      }
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 100));
    }
    throw new StateError('the election was stopped', { code: 'E_STOPPED' });
  }

  /** tryLead takes a lease and creates the key if it is still absent; the epoch when it did. */
  private async tryLead(): Promise<number | undefined> {
    const lease = this.client.lease(this.opts.ttlSec, { autoKeepAlive: false });
    lease.on('lost', () => undefined); // renewals are ours; their failures are handled below
    const sent = Date.now();
    const leaseId = String(await withTimeout(lease.grant(), this.deadlineMs, 'granting the leader lease'));
    const record: LeaderRecord = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), lease: leaseId, ...(this.opts.url ? { url: this.opts.url } : {}) };
    let res;
    try {
      res = await withTimeout(
        this.client.kv.txn({
          compare: [{ key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [
            { request_put: { key: this.keys.leader, value: Buffer.from(JSON.stringify(record)), lease: leaseId } },
            { request_put: { key: this.keys.beat, value: Buffer.from(JSON.stringify({ pid: process.pid, at: new Date(sent).toISOString() })), lease: leaseId } },
          ],
          failure: [],
        }),
        this.deadlineMs,
        'creating the leader key',
      );
    } catch (err) {
      void lease.revoke().catch(() => undefined);
      throw etcdError(err, 'the leader election', this.loc);
    }
    if (!res.succeeded) {
      void lease.revoke().catch(() => undefined);
      return undefined;
    }
    this.lease = lease;
    this.leaseId = leaseId;
    this.lastRenewSent = sent;
    this.epoch = Number(res.header.revision);
    this.current = { epoch: this.epoch, record };
    this.startRenewing();
    return this.epoch;
  }

  private startRenewing(): void {
    const ttlMs = this.opts.ttlSec * 1000;
    const every = Math.max(50, Math.floor(Math.min(ttlMs / 10, this.deadlineMs / 4)));
    let renewing = false;
    this.timers.push(
      setInterval(() => {
        if (renewing || this.stopped) return;
        renewing = true;
        const sent = Date.now();
        const epoch = this.epoch!;
        // the heartbeat: written only while the leader key is still this host's (a standby that saw it
        // stand still long enough has deleted the key, and this host's watchdog has stopped it by then)
        const beat = withTimeout(
          this.client.kv.txn({
            compare: [{ key: this.keys.leader, target: 'Create', result: 'Equal', create_revision: epoch }],
            success: [{ request_put: { key: this.keys.beat, value: Buffer.from(JSON.stringify({ pid: process.pid, at: new Date(sent).toISOString() })), lease: this.leaseId! } }],
            failure: [],
          }),
          this.deadlineMs,
          'writing the leader heartbeat',
        ).then((res) => {
          if (!res.succeeded) return this.lose(`the leader key of epoch ${epoch} is gone or another host's: this host was deposed`);
          if (sent > this.lastRenewSent) {
            this.lastRenewSent = sent;
            this.armWatchdog();
          }
        });
        const lease = withTimeout(this.lease!.keepaliveOnce({ deadline: new Date(sent + this.deadlineMs) }), this.deadlineMs, 'renewing the leader lease').then((res) => {
          if (Number(res.TTL) <= 0) this.lose(`etcd says the leader lease ${this.leaseId} expired`);
        });
        Promise.all([beat, lease])
          .catch((err: unknown) => {
            this.lastError = (err as Error).message.split('\n')[0]!;
            if (/lease.*(not found|expired|invalid)|EtcdLeaseInvalid/i.test(this.lastError)) this.lose(`etcd says the leader lease ${this.leaseId} is gone (${this.lastError})`);
          })
          .finally(() => {
            renewing = false;
          });
      }, every),
    );
    for (const t of this.timers) t.unref();
    this.armWatchdog();
  }

  /**
   * armWatchdog sets the watchdog to the deadline of the newest heartbeat that etcd wrote (its send
   * time + deadlineMs): the leader stops when that passes, not at the next tick of a poll after it.
   */
  private armWatchdog(): void {
    if (this.lostOnce || this.stopped) return;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      const since = Date.now() - this.lastRenewSent;
      // a timer may come a millisecond early by the wall clock: then wait for the rest
      if (since < this.deadlineMs) return this.armWatchdog();
      this.lose(`no heartbeat of the leader was written within its deadline of ${this.deadlineMs} ms (the last one written was sent ${since} ms ago${this.lastError ? `; last error: ${this.lastError}` : ''})`);
    }, Math.max(0, this.lastRenewSent + this.deadlineMs - Date.now()));
    this.watchdog.unref();
  }

  private lose(why: string): void {
    if (this.lostOnce || this.stopped) return;
    this.lostOnce = true;
    this.epoch = undefined;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.watchdog);
    this.opts.onLost(why);
  }

  /** resign stops renewing and deletes the key (a clean stop: a standby leads at once). */
  async resign(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.watchdog);
    const lease = this.lease;
    this.lease = undefined;
    this.epoch = undefined;
    if (lease) await withTimeout(lease.revoke(), this.deadlineMs, 'revoking the leader lease').catch(() => undefined);
  }
}
