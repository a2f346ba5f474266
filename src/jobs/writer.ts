/**
 * RunWriter holds the scheduler of runs' records (cursors and runs: it is their only writer) and
 * writes them to the state. Claims are committed at once and waited for; what follows a run (it
 * started, it ended) is coalesced: changes made while one commit is in flight go out together in the
 * next, so a thousand starts cost a handful of journal writes, not a thousand.
 */
import { FactoryError } from '../errors.js';
import type { EventInput, StateBackend, StateGuard, StateOp, StateTxn } from '../state/backend.js';
import { commitShared, newCursor } from './store.js';
import type { JobCounts, JobCursor, JobRecord, RunRecord } from './types.js';

/**
 * CursorMove is what a claim changes of a job's cursor: where it stands (past the slots the pass
 * decided; absent for a manual run) and the slots it counted, added to the counts it finds.
 */
export interface CursorMove {
  job: JobRecord;
  to?: { cursor: string; next?: string };
  add: Pick<JobCounts, 'runs' | 'missed' | 'skipped'>;
}

/** movedCursor is a cursor with a move applied. */
export function movedCursor(cur: JobCursor, m: CursorMove): JobCursor {
  const counts = { ...cur.counts, runs: cur.counts.runs + m.add.runs, missed: cur.counts.missed + m.add.missed, skipped: cur.counts.skipped + m.add.skipped };
  return { ...cur, ...(m.to ? { cursor: m.to.cursor, next: m.to.next } : {}), counts };
}

/** RunWriter is the in-memory copy of cursors and runs, written through to the state. */
export class RunWriter {
  private readonly runs = new Map<string, RunRecord>();
  /** byJob indexes the runs by job: a job's history is read without scanning every job's runs. */
  private readonly byJob = new Map<string, Map<string, RunRecord>>();
  private readonly cursors = new Map<string, JobCursor>();
  private readonly pending = new Map<string, StateOp>();
  private events: EventInput[] = [];
  /** draining is the loop writing the pending changes, when one runs; kicked: one is about to start. */
  private draining?: Promise<void>;
  private kicked = false;
  /** committing chains this writer's commits: one at a time, in the order they were taken. */
  private committing: Promise<unknown> = Promise.resolve();
  /** claiming is the claim being committed: no coalesced write starts until it holds (or is undone). */
  private claiming?: Promise<void>;
  private loaded = false;

  constructor(
    private readonly state: StateBackend,
    private readonly log: (line: string) => void,
  ) {}

  /** load reads the records from the state (once, at the first pass). */
  load(): void {
    if (this.loaded) return;
    const v = this.state.view();
    for (const r of v.list('runs')) this.setRun(r);
    for (const c of v.list('cursors')) this.cursors.set(c.id, c);
    this.loaded = true;
  }

  /** run is a run as last written. */
  run(id: string): RunRecord | undefined {
    return this.runs.get(id);
  }

  /** runsOf lists a job's runs (those kept and those going). */
  runsOf(job: string): RunRecord[] {
    const held = this.byJob.get(job);
    return held ? [...held.values()] : [];
  }

  private setRun(r: RunRecord): void {
    this.runs.set(r.id, r);
    let held = this.byJob.get(r.job);
    if (!held) this.byJob.set(r.job, (held = new Map()));
    held.set(r.id, r);
  }

  /** allRuns lists the runs. */
  allRuns(): RunRecord[] {
    return [...this.runs.values()];
  }

  /** cursorOf is a job's cursor (a new one for a job never scheduled). */
  cursorOf(job: JobRecord): JobCursor {
    return this.cursors.get(job.id) ?? newCursor(job);
  }

  /** allCursors lists the cursors. */
  allCursors(): JobCursor[] {
    return [...this.cursors.values()];
  }

  /**
   * claim commits new runs (guarded: each must not exist yet) with their jobs' cursor moves and
   * events, and waits for it: nothing of these runs starts before this returns. Pending updates go in
   * the same commit. Each move is applied to its cursor as it stands now, not as it stood when the
   * pass read it: a run that ended meanwhile (its count, lastRun, lastSuccessAt) is kept. The moved
   * cursors are what later changes build on while the commit is in flight; a failed claim undoes its
   * moves and nothing else.
   */
  async claim(runs: RunRecord[], moves: CursorMove[], events: EventInput[]): Promise<void> {
    while (this.claiming) await this.claiming;
    const guards: StateGuard[] = runs.map((r) => ({ table: 'runs', key: r.id, rev: 0 }));
    const before = new Map(moves.map((m) => [m.job.id, this.cursors.get(m.job.id)]));
    const cursors = moves.map((m) => movedCursor(this.cursorOf(m.job), m));
    const taken = [...this.pending.values()];
    const earlier = this.events;
    this.pending.clear();
    this.events = [];
    const ops: StateOp[] = [
      ...taken,
      ...runs.map((r) => ({ table: 'runs' as const, key: r.id, value: r })),
      ...cursors.map((c) => ({ table: 'cursors' as const, key: c.id, value: c })),
    ];
    for (const c of cursors) this.cursors.set(c.id, c);
    // no other write starts meanwhile: it would take the moved cursors before the claim is known to hold
    let release = () => {};
    this.claiming = new Promise<void>((resolve) => (release = resolve));
    try {
      if (ops.length > 0 || earlier.length + events.length > 0) await this.commit({ ops, events: [...earlier, ...events], guards });
    } catch (err) {
      for (const [i, m] of moves.entries()) this.unmove(m, cursors[i]!, before.get(m.job.id));
      this.putBack(taken, earlier);
      throw err;
    } finally {
      this.claiming = undefined;
      release();
      if (this.pending.size > 0 || this.events.length > 0) this.kick();
    }
    for (const r of runs) this.setRun(r);
  }

  /** unmove takes back a move that was not written, keeping what changed on the cursor since. */
  private unmove(m: CursorMove, moved: JobCursor, prev: JobCursor | undefined): void {
    const now = this.cursors.get(m.job.id);
    if (now === moved) {
      if (prev) this.cursors.set(m.job.id, prev);
      else this.cursors.delete(m.job.id);
      return;
    }
    if (!now) return;
    const base = prev ?? newCursor(m.job);
    const back: JobCursor = {
      ...now,
      cursor: base.cursor,
      next: base.next,
      counts: { ...now.counts, runs: now.counts.runs - m.add.runs, missed: now.counts.missed - m.add.missed, skipped: now.counts.skipped - m.add.skipped },
    };
    this.cursors.set(back.id, back);
    if (this.pending.has(`cursors/${back.id}`)) this.pending.set(`cursors/${back.id}`, { table: 'cursors', key: back.id, value: back });
  }

  /**
   * commit commits after this writer's earlier commits. Two of them in flight at once would have the
   * second go in beside the first one's lock, and the first one's unlock close the journal under it.
   */
  private commit(txn: StateTxn): Promise<number> {
    const run = () => commitShared(this.state, txn);
    const next = this.committing.then(run, run);
    this.committing = next.catch(() => undefined);
    return next;
  }

  private putBack(ops: StateOp[], events: EventInput[]): void {
    for (const op of ops) if (!this.pending.has(`${op.table}/${op.key}`)) this.pending.set(`${op.table}/${op.key}`, op);
    this.events = [...events, ...this.events];
  }

  /** putRun records a change of a run (coalesced; flush() or the next claim writes it). */
  putRun(r: RunRecord, ...events: EventInput[]): void {
    this.setRun(r);
    this.pending.set(`runs/${r.id}`, { table: 'runs', key: r.id, value: r });
    this.events.push(...events);
    this.kick();
  }

  /** deleteRun forgets a run (pruned from history, or its job is gone). */
  deleteRun(id: string): void {
    const r = this.runs.get(id);
    this.runs.delete(id);
    const held = r && this.byJob.get(r.job);
    if (held) {
      held.delete(id);
      if (held.size === 0) this.byJob.delete(r.job);
    }
    this.pending.set(`runs/${id}`, { table: 'runs', key: id });
    this.kick();
  }

  /** putCursor records a job's cursor (coalesced). */
  putCursor(c: JobCursor, ...events: EventInput[]): void {
    this.cursors.set(c.id, c);
    this.pending.set(`cursors/${c.id}`, { table: 'cursors', key: c.id, value: c });
    this.events.push(...events);
    this.kick();
  }

  /** deleteCursor forgets a job's cursor (its job is gone). */
  deleteCursor(id: string): void {
    this.cursors.delete(id);
    this.pending.set(`cursors/${id}`, { table: 'cursors', key: id });
    this.kick();
  }

  /** event queues an event with the next write. */
  event(e: EventInput): void {
    this.events.push(e);
    this.kick();
  }

  private kick(): void {
    if (this.draining || this.kicked) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      void this.drain();
    });
  }

  /**
   * drain writes what is pending, one commit after another, until nothing is (or a commit fails: what
   * it held is put back for the next flush). One drain at a time: a second caller joins the first,
   * whose loop picks up what was added meanwhile.
   */
  private drain(): Promise<void> {
    this.draining ??= (async () => {
      await Promise.resolve(); // `draining` is set before the loop can end and clear it
      try {
        while (this.pending.size > 0 || this.events.length > 0) {
          if (this.claiming) {
            await this.claiming;
            continue;
          }
          const ops = [...this.pending.values()];
          const events = this.events;
          this.pending.clear();
          this.events = [];
          try {
            await this.commit({ ops, events });
          } catch (err) {
            // put back what was not written, unless written again meanwhile; retried by the next flush
            this.putBack(ops, events);
            this.log(`jobs: cannot record run changes (will retry): ${(err as FactoryError).message}`);
            return;
          }
        }
      } finally {
        this.draining = undefined;
      }
    })();
    return this.draining;
  }

  /** flush writes what is pending and waits for it, and for every commit of this writer still in flight. */
  async flush(): Promise<void> {
    await this.drain();
    await this.committing;
  }
}
