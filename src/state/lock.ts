/**
 * FileLock is the writers' lock of a state directory: a proper-lockfile lock (refreshed every 2 s,
 * stale after 10 s) plus an owner file naming the holder. A holder that is a dead process on this
 * host is taken over at once, with a note, instead of waiting for the lock to go stale.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { StateError } from '../errors.js';
import type { LockOptions } from './backend.js';

/** LockOwner is what the owner file says about the holder. */
export interface LockOwner {
  pid: number;
  host: string;
  purpose: string;
  since: string;
}

/** describeOwner renders an owner for messages: `pid 123 on host, plan apply, since …`. */
export function describeOwner(o: LockOwner): string {
  return `pid ${o.pid}${o.host !== os.hostname() ? ` on ${o.host}` : ''}, ${o.purpose}, since ${o.since}`;
}

/** pidAlive says whether a process with this pid exists on this host. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * LockWait is the patience of one acquire: its deadline (opts.timeoutMs, else FACTORY_LOCK_TIMEOUT
 * seconds, else 60 s), the one note that it waits, and the error when it gives up. The directory
 * lock and the etcd lock share it, so both say the same things.
 */
export class LockWait {
  /** deadline is when the acquire gives up (ms since the epoch). */
  readonly deadline: number;
  private readonly timeoutMs: number;
  private told = false;

  constructor(
    private readonly where: string,
    private readonly opts: LockOptions,
  ) {
    const env = Number(process.env.FACTORY_LOCK_TIMEOUT);
    this.timeoutMs = opts.timeoutMs ?? (process.env.FACTORY_LOCK_TIMEOUT !== undefined && Number.isFinite(env) && env >= 0 ? env * 1000 : 60_000);
    this.deadline = Date.now() + this.timeoutMs;
  }

  /** check throws E_STATE_LOCKED past the deadline; before it, it says once (onWait, else stderr) who holds the lock. */
  check(owner: LockOwner | undefined): void {
    if (Date.now() >= this.deadline) {
      throw new StateError(
        `state ${this.where} is locked by another factory process${owner ? ` (${describeOwner(owner)})` : ''}; gave up after ${Math.round(this.timeoutMs / 1000)} s`,
        { code: 'E_STATE_LOCKED', hint: 'wait for it to finish, or raise FACTORY_LOCK_TIMEOUT (seconds)' },
      );
    }
    if (this.told) return;
    this.told = true;
    const who = owner ? describeOwner(owner) : 'another factory process';
    if (this.opts.onWait) this.opts.onWait(who);
    else process.stderr.write(`factory: waiting for the state lock held by ${who}…\n`);
  }
}

function errMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}: ${e.message.replace(/^\w+: /, '')}` : String(e?.message ?? err);
}

/** FileLock locks one state directory for one process. */
export class FileLock {
  private release?: () => Promise<void>;
  readonly lockPath: string;
  readonly ownerPath: string;
  private readonly guardPath: string;

  constructor(readonly dir: string) {
    this.lockPath = path.join(dir, 'state.lock');
    this.ownerPath = path.join(dir, 'state.lock.owner');
    this.guardPath = path.join(dir, 'state.lock.takeover');
  }

  get held(): boolean {
    return this.release !== undefined;
  }

  /** owner reads the owner file (undefined when absent or unreadable). */
  async owner(): Promise<LockOwner | undefined> {
    try {
      const o = JSON.parse(await fsp.readFile(this.ownerPath, 'utf8')) as LockOwner;
      return typeof o.pid === 'number' ? o : undefined;
    } catch {
      return undefined;
    }
  }

  /** acquire takes the lock, taking over from a dead holder, waiting for a live one up to the timeout. */
  async acquire(opts: LockOptions = {}): Promise<void> {
    if (this.release) return;
    const wait = new LockWait(this.dir, opts);
    for (;;) {
      try {
        this.release = await lockfile.lock(this.dir, {
          lockfilePath: this.lockPath,
          stale: 10_000,
          update: 2_000,
          realpath: false,
          onCompromised: (err) => process.stderr.write(`factory: warning: the state lock was compromised: ${err.message}\n`),
        });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
          throw new StateError(`cannot lock state directory ${this.dir}: ${errMessage(err)}`, { cause: err });
        }
      }
      const owner = await this.owner();
      if (owner && owner.host === os.hostname() && owner.pid !== process.pid && !pidAlive(owner.pid)) {
        if (await this.takeOver(owner)) continue;
      }
      wait.check(owner);
      await new Promise((r) => setTimeout(r, 100));
    }
    const me: LockOwner = { pid: process.pid, host: os.hostname(), purpose: opts.purpose ?? 'factory', since: new Date().toISOString() };
    await fsp.writeFile(this.ownerPath, JSON.stringify(me) + '\n', { mode: 0o600 }).catch(() => undefined);
  }

  /**
   * takeOver removes a dead holder's lock under a guard directory, so that two processes taking
   * over at once never remove each other's fresh lock. Returns whether the lock was removed.
   */
  private async takeOver(dead: LockOwner): Promise<boolean> {
    try {
      await fsp.mkdir(this.guardPath);
    } catch {
      // another process is taking over; a guard left by a crash is cleared once it is 10 s old
      const st = await fsp.stat(this.guardPath).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 10_000) await fsp.rm(this.guardPath, { recursive: true, force: true }).catch(() => undefined);
      return false;
    }
    try {
      const again = await this.owner();
      if (!again || again.pid !== dead.pid || again.since !== dead.since) return false;
      await fsp.rm(this.ownerPath, { force: true });
      await fsp.rm(this.lockPath, { recursive: true, force: true });
      process.stderr.write(`factory: note: took over the state lock of ${describeOwner(dead)}: that process is gone\n`);
      return true;
    } finally {
      await fsp.rm(this.guardPath, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** releaseLock releases the lock if held; safe to call more than once. */
  async releaseLock(): Promise<void> {
    const release = this.release;
    if (!release) return;
    this.release = undefined;
    await fsp.rm(this.ownerPath, { force: true }).catch(() => undefined);
    await release().catch(() => undefined);
  }
}
