/**
 * EventLog keeps the state's events by revision with a retention by count, by age and per subject,
 * so that one crash-looping task cannot push every other event out. Whatever is dropped raises
 * droppedThrough: a reader resuming from before it is told to reset (re-list), never silently skips.
 */
import type { EventRecord, EventsPage } from './backend.js';

/** EventRetention bounds the log. */
export interface EventRetention {
  /** maxEvents is the most events kept in all (default 10,000; env FACTORY_EVENTS_MAX). */
  maxEvents: number;
  /** maxAgeMs drops events older than this (default 7 days; env FACTORY_EVENTS_MAX_AGE in seconds). */
  maxAgeMs: number;
  /** perSubject is the most events kept about one task, agent, plan, job or deployment (default 200; env FACTORY_EVENTS_PER_SUBJECT). */
  perSubject: number;
}

/** retentionFromEnv returns the default retention, adjusted by the FACTORY_EVENTS_* variables. */
export function retentionFromEnv(env: NodeJS.ProcessEnv = process.env): EventRetention {
  const num = (name: string, dflt: number, scale = 1) => {
    const v = Number(env[name]);
    return env[name] !== undefined && Number.isFinite(v) && v > 0 ? v * scale : dflt;
  };
  return {
    maxEvents: num('FACTORY_EVENTS_MAX', 10_000),
    maxAgeMs: num('FACTORY_EVENTS_MAX_AGE', 7 * 24 * 3600 * 1000, 1000),
    perSubject: num('FACTORY_EVENTS_PER_SUBJECT', 200),
  };
}

/** subjectOf is what an event is about, for the per-subject bound. */
export function subjectOf(e: EventRecord): string {
  if (e.deployment) return `deployment:${e.deployment}`;
  if (e.job) return `job:${e.job}`;
  if (e.task) return `task:${e.task}`;
  if (e.agent) return `agent:${e.agent}`;
  if (e.plan) return `plan:${e.plan}`;
  return `kind:${e.kind}`;
}

/** EventLog is the in-memory log; the backends persist what it holds. */
export class EventLog {
  private events: EventRecord[] = [];
  private readonly bySubject = new Map<string, number[]>();
  /** latest is the newest revision ever committed. */
  latest = 0;
  /** droppedThrough is the newest revision dropped by retention (0: none). */
  droppedThrough = 0;

  constructor(readonly retention: EventRetention = retentionFromEnv()) {}

  /** load replaces the log (from a snapshot), keeping the revisions it had. */
  load(events: EventRecord[], latest: number, droppedThrough: number): void {
    this.events = [];
    this.bySubject.clear();
    this.latest = Math.max(latest, events.at(-1)?.rev ?? 0);
    this.droppedThrough = droppedThrough;
    for (const e of events) this.append(e);
  }

  /** append adds a committed event (rev must be above latest unless loading) and applies the retention. */
  append(e: EventRecord): void {
    this.events.push(e);
    this.latest = Math.max(this.latest, e.rev);
    const s = subjectOf(e);
    const revs = this.bySubject.get(s) ?? [];
    revs.push(e.rev);
    this.bySubject.set(s, revs);
    if (revs.length > this.retention.perSubject) this.dropRev(revs.shift()!);
    while (this.events.length > this.retention.maxEvents) this.dropOldest();
  }

  /** expire drops the events older than the age bound. */
  expire(now = Date.now()): void {
    const cutoff = now - this.retention.maxAgeMs;
    while (this.events.length > 0 && Date.parse(this.events[0]!.at) < cutoff) this.dropOldest();
  }

  /** all returns the kept events, oldest first. */
  all(): EventRecord[] {
    return this.events;
  }

  /** since returns the kept events after rev, with reset set when some after it were dropped. */
  since(rev: number, filter?: (e: EventRecord) => boolean): EventsPage {
    const oldest = this.events[0]?.rev ?? this.latest + 1;
    // a reader from before a dropped revision gets every kept event and reset: it must re-list
    const reset = rev < this.droppedThrough;
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid]!.rev <= rev) lo = mid + 1;
      else hi = mid;
    }
    const out = this.events.slice(lo);
    return { events: filter ? out.filter(filter) : out, reset, latest: this.latest, oldest };
  }

  private dropOldest(): void {
    const e = this.events.shift();
    if (!e) return;
    this.droppedThrough = Math.max(this.droppedThrough, e.rev);
    const revs = this.bySubject.get(subjectOf(e));
    if (revs) {
      const i = revs.indexOf(e.rev);
      if (i >= 0) revs.splice(i, 1);
      if (revs.length === 0) this.bySubject.delete(subjectOf(e));
    }
  }

  private dropRev(rev: number): void {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid]!.rev < rev) lo = mid + 1;
      else hi = mid;
    }
    if (this.events[lo]?.rev === rev) this.events.splice(lo, 1);
    this.droppedThrough = Math.max(this.droppedThrough, rev);
  }
}
