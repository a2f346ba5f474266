/**
 * ApiStateSource is the dashboard's state when it watches a control host (`factory dashboard
 * --control URL`) instead of a state file: it lists the agents and tasks once (GET /v1/agents,
 * GET /v1/tasks), the jobs with their runs (api-jobs.ts) and the deployments (GET /v1/deployments),
 * then follows the event stream (GET /v1/events) from the revision it listed at. Events do not
 * carry records, so every batch of new events (debounced) lists again: simple, and never out of
 * step with the host; the jobs are listed again only after `job` events (and the runs only of the
 * jobs that changed); the deployments after `deployment` events, and with every listing of the
 * tasks while one is in progress (its counts follow its tasks, which a step may move without a
 * deployment event). `event: reset` lists everything again. The stream also replays the last few hundred events once, which fill the events
 * pane.
 *
 * When the host cannot be reached the last document stays on screen with an error line
 * (snapshot.error); the source keeps trying (bounded backoff), and once a listing succeeds the error
 * goes and the stream resumes after the last revision it delivered.
 *
 * Some commits carry no event (an observation that only updates lastSeen): refresh() lists on
 * demand, and the dashboard calls it every --refresh-interval.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ApiClient } from '../client/http.js';
import { followEvents } from '../client/sse.js';
import type { FactoryError } from '../errors.js';
import { isActive, type DeploymentRecord } from '../deploy/types.js';
import type { AgentRecord, EventRecord, StateData, TaskRecord } from '../state/types.js';
import { JobsLister } from './api-jobs.js';
import { deploymentsOf, NO_DEPLOYMENTS, type DeploymentView } from './deployments-model.js';
import { emptyState } from './empty-state.js';
import { SnapshotPublisher } from './state-source.js';

/** ApiStateSourceOptions tune listing, the event stream and reconnects. */
export interface ApiStateSourceOptions {
  /** debounceMs waits for a burst of events to settle before listing again (default 100). */
  debounceMs?: number;
  /** maxEvents is how many recent events are kept for the events pane (default 500). */
  maxEvents?: number;
  /** heartbeatMs is the host's SSE heartbeat; the stream counts as lost after three silent ones (default 15 s). */
  heartbeatMs?: number;
  /** minBackoffMs and maxBackoffMs bound the wait between attempts to reach a lost host (defaults 250 ms and 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** timeoutMs bounds each listing call (default: the client's timeout, at most 10 s). */
  timeoutMs?: number;
}

/** isEventRecord tells whether a stream event's data is a committed event. */
function isEventRecord(v: unknown): v is EventRecord {
  const e = v as EventRecord;
  return typeof v === 'object' && v !== null && typeof e.rev === 'number' && typeof e.topic === 'string' && typeof e.kind === 'string';
}

/** Listing says what one pass of the listing loop lists: agents and tasks, the jobs, the deployments. */
interface Listing {
  core: boolean;
  jobs: boolean;
  deployments: boolean;
}

const EVERYTHING: Listing = { core: true, jobs: true, deployments: true };
const NOTHING: Listing = { core: false, jobs: false, deployments: false };

/** ApiStateSource is a StateSource over a control host's HTTP API and event stream. */
export class ApiStateSource extends SnapshotPublisher {
  private readonly ac = new AbortController();
  private readonly opts: Required<Omit<ApiStateSourceOptions, 'timeoutMs'>> & { timeoutMs: number };
  private data: StateData = emptyState();
  private events: EventRecord[] = [];
  /** listedRev is the revision the current document was listed at: newer events mean it is stale. */
  private listedRev = 0;
  /** streamRev is the last revision the stream delivered (where a reconnect resumes). */
  private streamRev: number | undefined;
  private error: string | undefined;
  private debounce?: NodeJS.Timeout;
  private needList = false;
  private needJobs = false;
  private needDeployments = false;
  private readonly jobs: JobsLister;
  /** deployments is the last listing of GET /v1/deployments (as the view shows them). */
  private deployments: readonly DeploymentView[] = NO_DEPLOYMENTS;
  /** deploymentsRev is the revision of that listing: deployment events at or before it changed nothing it missed. */
  private deploymentsRev = -1;
  /** noDeployments is set when the host has no deployment routes (an older release): it is not asked again. */
  private noDeployments = false;
  private listing?: Promise<void>;
  /** pending is what the next pass of the listing loop lists. */
  private pending: Listing = { ...NOTHING };
  private closed = false;
  private followLoop?: Promise<void>;

  private constructor(
    readonly client: ApiClient,
    opts: ApiStateSourceOptions,
  ) {
    super({ data: emptyState(), version: 0, readAt: Date.now() });
    this.opts = {
      debounceMs: opts.debounceMs ?? 100,
      maxEvents: opts.maxEvents ?? 500,
      heartbeatMs: opts.heartbeatMs ?? 15_000,
      minBackoffMs: opts.minBackoffMs ?? 250,
      maxBackoffMs: opts.maxBackoffMs ?? 5_000,
      timeoutMs: opts.timeoutMs ?? Math.min(client.timeoutMs, 10_000),
    };
    this.jobs = new JobsLister(client);
    this.snap = { data: this.data, jobs: this.jobs.current(), deployments: this.deployments, version: 0, readAt: Date.now() };
  }

  /**
   * open lists once (a host that cannot be reached, or refuses the token, rejects: the command
   * reports it) and starts following the event stream.
   */
  static async open(client: ApiClient, opts: ApiStateSourceOptions = {}): Promise<ApiStateSource> {
    const s = new ApiStateSource(client, opts);
    await s.listNow();
    // the stream first replays up to maxEvents recent events (they fill the events pane), then follows
    s.streamRev = Math.max(0, s.listedRev - s.opts.maxEvents);
    s.followLoop = s.follow();
    return s;
  }

  /** url is the control host the client talks to (for the header). */
  get url(): string {
    return this.client.current;
  }


  /** refresh lists again now (the dashboard's --refresh-interval: commits without events show up too). */
  async refresh(): Promise<void> {
    await this.list();
  }

  /** close stops the stream and the timers (done() resolves once the stream has ended). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ac.abort();
    if (this.debounce) clearTimeout(this.debounce);
    this.listeners.clear();
  }

  /** done resolves when the follow loop has ended (after close). */
  async done(): Promise<void> {
    await this.followLoop;
  }

  // ---- listing -----------------------------------------------------------------------------------

  /** list lists agents and tasks, the jobs, the deployments, or some of them; a listing already running is followed by one more (never two at once). */
  private async list(what: Listing = EVERYTHING): Promise<void> {
    this.pending = { core: this.pending.core || what.core, jobs: this.pending.jobs || what.jobs, deployments: this.pending.deployments || what.deployments };
    if (this.listing) return this.listing;
    const run = async () => {
      try {
        while ((this.pending.core || this.pending.jobs || this.pending.deployments) && !this.closed) {
          const now = this.pending;
          this.pending = { ...NOTHING };
          try {
            await this.listNow(now);
          } catch (err) {
            this.fail(err);
          }
        }
      } finally {
        this.listing = undefined;
      }
    };
    this.listing = run();
    return this.listing;
  }

  /**
   * listNow lists once (agents and tasks, the jobs, the deployments, or some of them) and publishes;
   * it throws when the host does not answer. A listing of the tasks lists the deployments too while
   * one is in progress.
   */
  private async listNow(what: Listing = EVERYTHING): Promise<void> {
    const call = { timeoutMs: this.opts.timeoutMs, signal: this.ac.signal };
    const deployments = what.deployments || (what.core && this.deployments.some(isActive));
    const [agents, tasks] = await Promise.all([
      what.core ? this.client.getJson<{ rev: number; agents: AgentRecord[] }>('/v1/agents', call) : undefined,
      what.core ? this.client.getJson<{ rev: number; tasks: TaskRecord[] }>('/v1/tasks', call) : undefined,
      what.jobs ? this.jobs.list(call) : undefined,
      deployments ? this.listDeployments(call) : undefined,
    ]);
    if (this.closed) return;
    if (agents && tasks) {
      // the two answers may be a commit apart: events after the older one make the document stale
      this.listedRev = Math.min(agents.rev, tasks.rev);
      this.data = {
        version: 2,
        rev: Math.max(agents.rev, tasks.rev),
        agents: Object.fromEntries(agents.agents.map((a) => [a.name, a])),
        tasks: Object.fromEntries(tasks.tasks.map((t) => [t.task, t])),
        plans: {},
        events: this.events,
      };
    }
    this.error = undefined;
    this.publish();
  }

  /** listDeployments lists the host's deployments (none from a host without the routes: it is not asked again). */
  private async listDeployments(call: { timeoutMs: number; signal: AbortSignal }): Promise<void> {
    if (this.noDeployments) return;
    try {
      const answer = await this.client.getJson<{ rev: number; deployments: DeploymentRecord[] }>('/v1/deployments', call);
      this.deployments = deploymentsOf(answer.deployments);
      this.deploymentsRev = answer.rev;
    } catch (err) {
      if ((err as FactoryError | undefined)?.code !== 'E_NOT_FOUND') throw err;
      this.noDeployments = true;
      this.deployments = NO_DEPLOYMENTS;
    }
  }

  /** deploymentNews says whether an event is a deployment event newer than the deployments' listing (list them again). */
  private deploymentNews(e: EventRecord): boolean {
    return e.topic === 'deployment' && !this.noDeployments && e.rev > this.deploymentsRev;
  }

  // ---- the event stream --------------------------------------------------------------------------

  /**
   * follow reads the event stream until closed. followEvents reports the first drop (maxAttempts 0)
   * instead of retrying on its own, so that the error shows at once and the host is listed again
   * (which also says it is back) before the stream resumes.
   */
  private async follow(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        await followEvents(this.client, {
          since: this.streamRev,
          follow: true,
          maxAttempts: 0,
          heartbeatMs: this.opts.heartbeatMs,
          signal: this.ac.signal,
          onEvent: (e) => {
            failures = 0;
            this.streamRev = e.revision;
            const record = isEventRecord(e.data) ? e.data : undefined;
            if (record) this.addEvent(record);
            this.schedule(e.revision > this.listedRev, record ? this.jobs.note(record) : false, record ? this.deploymentNews(record) : false);
          },
          onReset: (r) => {
            failures = 0;
            if (r.revision !== undefined) this.streamRev = r.revision;
            this.jobs.invalidate();
            this.schedule(true, true, true);
          },
        });
        if (this.closed) return;
        throw new Error('the event stream ended');
      } catch (err) {
        if (this.closed) return;
        this.fail(err);
      }
      // reconnect: wait (bounded backoff), list again (it clears the error once the host answers), then resume the stream
      this.jobs.invalidate();
      for (;;) {
        failures++;
        const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(failures - 1, 16));
        await sleep(Math.round(base / 2 + Math.random() * (base / 2)), this.ac.signal);
        if (this.closed) return;
        try {
          await this.listNow();
          break;
        } catch (err) {
          this.fail(err);
        }
      }
    }
  }

  private addEvent(e: EventRecord): void {
    const last = this.events.at(-1);
    if (last && e.rev <= last.rev) {
      if (this.events.some((x) => x.rev === e.rev)) return;
      this.events.push(e);
      this.events.sort((a, b) => a.rev - b.rev);
    } else this.events.push(e);
    if (this.events.length > this.opts.maxEvents) this.events.splice(0, this.events.length - this.opts.maxEvents);
  }

  /** schedule publishes (list: lists agents and tasks first; jobs: the jobs; deployments: the deployments) once a burst of events has settled. */
  private schedule(list: boolean, jobs: boolean, deployments: boolean): void {
    if (this.closed) return;
    this.needList ||= list;
    this.needJobs ||= jobs;
    this.needDeployments ||= deployments;
    if (this.debounce) return; // a batch: the first event starts the timer, later ones ride along
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      const what = { core: this.needList, jobs: this.needJobs, deployments: this.needDeployments };
      this.needList = false;
      this.needJobs = false;
      this.needDeployments = false;
      if (what.core || what.jobs || what.deployments) void this.list(what);
      else {
        this.data = { ...this.data, events: this.events };
        this.publish();
      }
    }, this.opts.debounceMs);
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    const msg = (err as Error)?.message ?? String(err);
    this.error = `${msg.startsWith('control host') ? '' : `control host ${this.client.current}: `}${msg} (showing the last state received; reconnecting)`;
    this.publish();
  }

  private publish(): void {
    if (this.closed) return;
    // a new events array each time: the dashboard builds its model per document
    this.data = { ...this.data, events: this.events.slice() };
    this.emit({ data: this.data, jobs: this.jobs.current(), deployments: this.deployments, version: this.snap.version + 1, readAt: Date.now(), ...(this.error ? { error: this.error } : {}) });
  }
}

/** sleep waits ms, or less when the signal aborts (it never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}
