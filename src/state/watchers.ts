/** Watchers fans committed events out to the watch() subscribers of one backend handle. */
import type { EventRecord } from './backend.js';

/** Watchers holds the subscribers; a throwing subscriber never stops the others. */
export class Watchers {
  private readonly subs = new Set<(e: EventRecord) => void>();

  add(fn: (e: EventRecord) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  get size(): number {
    return this.subs.size;
  }

  publish(events: EventRecord[]): void {
    for (const e of events) {
      for (const fn of this.subs) {
        try {
          fn(e);
        } catch {
          // a subscriber's failure is its own
        }
      }
    }
  }
}
