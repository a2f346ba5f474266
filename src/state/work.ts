/**
 * StateWork is a unit of work over a StateBackend: reads see the committed records with this
 * unit's own pending writes on top; writes and events are collected and committed together by
 * flush(), as one atomic transaction that holds only what changed. Records read are never mutated
 * in place: a change is a put of a new record.
 */
import type { EventInput, EventTopic, StateBackend, StateOp, TableName, TableRecords } from './backend.js';
import { topicOfKind } from './migrate.js';

const KEYS: { [T in TableName]: (r: TableRecords[T]) => string } = {
  agents: (r) => r.name,
  tasks: (r) => r.task,
  plans: (r) => r.name,
  tokens: (r) => r.id,
  jobs: (r) => r.id,
  cursors: (r) => r.id,
  runs: (r) => r.id,
  deployments: (r) => r.id,
};

/** TableWork is one table seen through a unit of work. */
export class TableWork<T extends TableName> {
  /** pending holds this unit's writes: a record, or null for a delete. */
  readonly pending = new Map<string, TableRecords[T] | null>();

  constructor(
    private readonly backend: StateBackend,
    readonly table: T,
  ) {}

  get(key: string): TableRecords[T] | undefined {
    const p = this.pending.get(key);
    if (p !== undefined) return p ?? undefined;
    return this.backend.view().get(this.table, key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** put writes a record (keyed by its name, task id or token id). */
  put(rec: TableRecords[T]): void {
    this.pending.set(KEYS[this.table](rec), rec);
  }

  delete(key: string): void {
    this.pending.set(key, null);
  }

  /** values lists the records, pending writes included. */
  values(): TableRecords[T][] {
    const out: TableRecords[T][] = [];
    for (const r of this.backend.view().list(this.table)) {
      const key = KEYS[this.table](r);
      if (!this.pending.has(key)) out.push(r);
    }
    for (const r of this.pending.values()) if (r) out.push(r);
    return out;
  }
}

/** WorkEvent is an event as the control code writes it; the topic defaults from the kind. */
export type WorkEvent = Omit<EventInput, 'topic'> & { topic?: EventTopic };

/** StateWork collects the writes of one operation and commits them. */
export class StateWork {
  readonly agents: TableWork<'agents'>;
  readonly tasks: TableWork<'tasks'>;
  readonly plans: TableWork<'plans'>;
  readonly tokens: TableWork<'tokens'>;
  readonly jobs: TableWork<'jobs'>;
  readonly cursors: TableWork<'cursors'>;
  readonly runs: TableWork<'runs'>;
  readonly deployments: TableWork<'deployments'>;
  private events: EventInput[] = [];
  private lastFlush = 0;
  private flushing: Promise<unknown> = Promise.resolve();

  /**
   * by stamps every event with who caused it; the events of tasks, plans and deployments are stamped with their
   * plan and project too (so a project token sees its own).
   */
  constructor(
    readonly backend: StateBackend,
    readonly by?: string,
  ) {
    this.agents = new TableWork(backend, 'agents');
    this.tasks = new TableWork(backend, 'tasks');
    this.plans = new TableWork(backend, 'plans');
    this.tokens = new TableWork(backend, 'tokens');
    this.jobs = new TableWork(backend, 'jobs');
    this.cursors = new TableWork(backend, 'cursors');
    this.runs = new TableWork(backend, 'runs');
    this.deployments = new TableWork(backend, 'deployments');
  }

  private get tables(): TableWork<TableName>[] {
    return [this.agents, this.tasks, this.plans, this.tokens, this.jobs, this.cursors, this.runs, this.deployments] as TableWork<TableName>[];
  }

  /** event queues an event to publish with the next flush. */
  event(e: WorkEvent): void {
    const task = e.task ? this.tasks.get(e.task) : undefined;
    const deployment = e.deployment ? this.deployments.get(e.deployment) : undefined;
    const plan = e.plan ?? task?.plan ?? deployment?.plan;
    const project = e.project ?? task?.project ?? deployment?.project ?? (plan ? this.plans.get(plan)?.project : undefined);
    this.events.push({
      ...e,
      topic: e.topic ?? topicOfKind(e.kind),
      ...(plan ? { plan } : {}),
      ...(project ? { project } : {}),
      ...(this.by && !e.by ? { by: this.by } : {}),
    });
  }

  /** dirty says whether anything waits to be committed. */
  get dirty(): boolean {
    return this.events.length > 0 || this.tables.some((t) => t.pending.size > 0);
  }

  /** flush commits the pending writes and events as one transaction (nothing when there are none). */
  async flush(): Promise<void> {
    const run = async () => {
      this.lastFlush = Date.now();
      if (!this.dirty) return;
      const ops: StateOp[] = [];
      const tables = this.tables;
      const taken = tables.map((t) => new Map(t.pending));
      tables.forEach((t, i) => {
        for (const [key, value] of taken[i]!) ops.push({ table: t.table, key, ...(value ? { value } : {}) } as StateOp);
      });
      const events = this.events;
      this.events = [];
      try {
        await this.backend.commit({ ops, events });
      } catch (err) {
        this.events = [...events, ...this.events];
        throw err;
      }
      // drop what was committed, unless written again meanwhile
      tables.forEach((t, i) => {
        for (const [key, value] of taken[i]!) if (t.pending.get(key) === value) t.pending.delete(key);
      });
    };
    const next = this.flushing.then(run, run);
    this.flushing = next.catch(() => undefined);
    await next;
  }

  /** flushThrottled flushes unless the last flush was less than intervalMs ago; end with flush(). */
  async flushThrottled(intervalMs: number): Promise<void> {
    if (Date.now() - this.lastFlush < intervalMs) return;
    await this.flush();
  }
}
