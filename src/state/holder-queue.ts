/**
 * HolderQueue lets one caller of a process at a time hold a state handle's lock: a control host serves
 * several requests on one handle, and each takes its turn before the backend's own lock (a directory
 * lock, an etcd key) is asked for. The file and etcd backends share it.
 */
import { StateError } from '../errors.js';

/** HolderQueue queues this process's holders of one state handle, first come first served. */
export class HolderQueue {
  private tail: Promise<void> = Promise.resolve();
  private release?: () => void;

  /**
   * enter waits for the holders before this one. With noWait (a lock asked with timeoutMs 0) it
   * throws E_STATE_LOCKED at once when another request of this process holds the handle.
   */
  async enter(where: string, noWait = false): Promise<void> {
    const prev = this.tail;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.tail = prev.then(() => mine);
    if (noWait && this.release) {
      release();
      throw new StateError(`state ${where} is locked by another request of this process`, { code: 'E_STATE_LOCKED' });
    }
    await prev;
    this.release = release;
  }

  /** leave lets the next holder in (a no-op when none holds). */
  leave(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}
