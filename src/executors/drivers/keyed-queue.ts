/**
 * KeyedQueue runs async work one at a time per key (a task id, a network name) and concurrently
 * across keys: two requests for the same task never interleave inside a driver.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** run queues fn behind the work already queued for key and returns its result. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
