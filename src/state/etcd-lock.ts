/**
 * EtcdLock is the writers' lock of an etcd state: the key `<prefix>/lock`, created only when absent
 * and attached to this process's lease (FACTORY_ETCD_LOCK_TTL, 5 s, kept alive by the client). Its
 * create revision is the fencing token: every commit compares it, so a holder whose lease expired
 * or was revoked (the key is gone, or someone else's now) has each commit refused by etcd itself.
 * Like the file lock, a holder that is a dead process on this host is taken over at once.
 */
import os from 'node:os';
import type { Etcd3, ICompare, IKeyValue, Lease } from 'etcd3';
import { StateError } from '../errors.js';
import type { LockOptions } from './backend.js';
import { etcdError, type EtcdKeys, type EtcdLocation, type EtcdSettings } from './etcd-client.js';
import { describeOwner, LockWait, pidAlive, type LockOwner } from './lock.js';

/** EtcdLockOwner is the lock key's value: who holds it, and on which lease. */
export interface EtcdLockOwner extends LockOwner {
  lease: string;
  /** epoch is the leadership epoch of the control host that holds it (hosts on etcd only). */
  epoch?: number;
}

/** AcquiredLock is what taking the lock tells: the counter's mod revision then (the mirror must reach it). */
export interface AcquiredLock {
  counterMod: number;
}

function parseOwner(kv: IKeyValue | undefined): EtcdLockOwner | undefined {
  if (!kv) return undefined;
  try {
    const o = JSON.parse(kv.value.toString('utf8')) as EtcdLockOwner;
    return typeof o.pid === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** EtcdLock takes and releases the writers' lock of one etcd state for one handle. */
export class EtcdLock {
  /** createRev is the lock key's create revision while this handle holds it (0: not held). */
  private createRev = 0;
  private lease?: Lease;
  private leaseId?: string;
  private lost?: Error;
  /** stale is the create revision of a lock key of ours whose release etcd did not answer. */
  private stale = 0;
  private wakers: (() => void)[] = [];
  /** epoch is this process's leadership epoch: a holder of an older one was deposed and is taken over at once. */
  epoch?: number;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: EtcdKeys,
    private readonly loc: EtcdLocation,
    private readonly settings: EtcdSettings,
  ) {}

  get held(): boolean {
    return this.createRev !== 0;
  }

  /** leaseIdOf is the lease the lock is attached to while held (tests revoke it). */
  get leaseIdOf(): string | undefined {
    return this.held ? this.leaseId : undefined;
  }

  /** fence is the compare every commit carries: the lock key is still the one this handle created. */
  fence(): ICompare {
    return { key: this.keys.lock, target: 'Create', result: 'Equal', create_revision: this.createRev };
  }

  /** fencedError explains a commit refused because the lock key is no longer ours. */
  fencedError(now: IKeyValue | undefined): StateError {
    const other = parseOwner(now);
    return new StateError(
      `the state lock on etcd (${this.loc.prefix}) is no longer held by this process: ${other ? `${describeOwner(other)} holds it now` : 'its lease expired or was revoked'}${this.lost ? ` (${this.lost.message})` : ''}; the commit was refused and nothing was written`,
      { code: 'E_STATE_FENCED', hint: 'another writer may have changed the state: run the command again (it takes the lock and re-reads)' },
    );
  }

  /** wake tells a waiting acquire that the lock key changed (the backend's watch calls it). */
  wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private async ensureLease(): Promise<string> {
    if (this.lease && this.leaseId && !this.lost) return this.leaseId;
    this.lease?.removeAllListeners();
    this.lost = undefined;
    const lease = this.client.lease(this.settings.lockTtl);
    lease.on('lost', (err: Error) => {
      if (this.lease !== lease) return;
      this.lost = err;
      if (this.held) process.stderr.write(`factory: warning: the etcd lease of the state lock was lost (${err.message}): commits are refused until the lock is taken again\n`);
    });
    this.lease = lease;
    try {
      this.leaseId = String(await lease.grant());
    } catch (err) {
      this.lease = undefined;
      throw etcdError(err, 'a lease for the state lock', this.loc);
    }
    return this.leaseId;
  }

  /** acquire takes the lock, taking over from a dead holder on this host, waiting for a live one up to the timeout. */
  async acquire(opts: LockOptions = {}): Promise<AcquiredLock> {
    if (this.held) throw new StateError('the etcd state lock is already held by this handle', { code: 'E_STATE_LOCKED' });
    const wait = new LockWait(`${this.loc.prefix} on etcd`, opts);
    for (let attempt = 0; ; attempt++) {
      const leaseId = await this.ensureLease();
      const me: EtcdLockOwner = { pid: process.pid, host: os.hostname(), purpose: opts.purpose ?? 'factory', since: new Date().toISOString(), lease: leaseId, ...(this.epoch !== undefined ? { epoch: this.epoch } : {}) };
      let res;
      try {
        res = await this.client.kv.txn({
          compare: [{ key: this.keys.lock, target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [{ request_put: { key: this.keys.lock, value: Buffer.from(JSON.stringify(me)), lease: leaseId } }, { request_range: { key: this.keys.counter } }],
          failure: [{ request_range: { key: this.keys.lock } }, { request_range: { key: this.keys.counter } }],
        });
      } catch (err) {
        // a lease that expired meanwhile: take a new one, once
        if (/lease not found/i.test(String((err as Error).message)) && attempt === 0) {
          this.lost = err as Error;
          continue;
        }
        throw etcdError(err, 'taking the state lock', this.loc);
      }
      if (res.succeeded) {
        this.createRev = Number(res.header.revision);
        return { counterMod: Number(res.responses[1]?.response_range.kvs[0]?.mod_revision ?? 0) };
      }
      const kv = res.responses[0]?.response_range.kvs[0];
      const owner = parseOwner(kv);
      // an attempt whose answer was lost took it (the client retried on another member): it is ours
      if (kv && owner && owner.pid === process.pid && owner.lease === leaseId && owner.since === me.since) {
        this.createRev = Number(kv.create_revision);
        return { counterMod: Number(res.responses[1]?.response_range.kvs[0]?.mod_revision ?? 0) };
      }
      // our own key, left when etcd did not answer its release: delete it rather than wait for its lease
      if (kv && this.stale !== 0 && Number(kv.create_revision) === this.stale) {
        this.stale = 0;
        if (await this.takeOver(kv)) continue;
      }
      if (kv && owner && owner.host === os.hostname() && owner.pid !== process.pid && !pidAlive(owner.pid)) {
        if (await this.takeOver(kv, owner)) continue;
      }
      // a control host that led before this one: it was deposed, its commits are fenced; do not wait for its lease
      if (kv && owner && owner.epoch !== undefined && this.epoch !== undefined && owner.epoch < this.epoch) {
        if (await this.takeOver(kv)) {
          process.stderr.write(`factory: note: took over the state lock of ${describeOwner(owner)}: it led in epoch ${owner.epoch}, this host leads in epoch ${this.epoch}\n`);
          continue;
        }
      }
      wait.check(owner);
      // the watch wakes us when the key goes; poll too, in case the watch is behind
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(done, Math.min(250, Math.max(0, wait.deadline - Date.now())));
        this.wakers.push(done);
      });
    }
  }

  /** takeOver deletes a dead local holder's key, only if it is still that holder's (its create revision). */
  private async takeOver(kv: IKeyValue, dead?: EtcdLockOwner): Promise<boolean> {
    const res = await this.client.kv
      .txn({
        compare: [{ key: this.keys.lock, target: 'Create', result: 'Equal', create_revision: kv.create_revision }],
        success: [{ request_delete_range: { key: this.keys.lock } }],
        failure: [],
      })
      .catch((err: unknown) => {
        throw etcdError(err, 'taking over the state lock', this.loc);
      });
    if (res.succeeded && dead) process.stderr.write(`factory: note: took over the state lock of ${describeOwner(dead)}: that process is gone\n`);
    return res.succeeded;
  }

  /** release deletes the lock key if it is still ours; when etcd does not answer, the lease lets it go within its TTL. */
  async release(): Promise<void> {
    if (!this.held) return;
    const createRev = this.createRev;
    this.createRev = 0;
    try {
      await this.client.kv.txn({
        compare: [{ key: this.keys.lock, target: 'Create', result: 'Equal', create_revision: createRev }],
        success: [{ request_delete_range: { key: this.keys.lock } }],
        failure: [],
      });
    } catch {
      // the key goes with the lease, or the next acquire deletes it; a new lease next time
      this.stale = createRev;
      void this.dropLease();
    }
  }

  /** dropLease forgets this lock's lease and revokes it (its keys go with it); the next acquire takes a new one. */
  private async dropLease(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.leaseId = undefined;
    if (!lease) return;
    lease.removeAllListeners();
    lease.on('lost', () => undefined);
    await lease.revoke().catch(() => undefined);
  }

  /** close releases the lock and revokes the lease. */
  async close(): Promise<void> {
    await this.release();
    await this.dropLease();
  }
}
