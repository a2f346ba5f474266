/**
 * Prometheus metrics of the API host (GET /metrics). Every ApiMetrics has its own registry, so two
 * hosts (or tests) in one process never clash. Gauges over the state are read at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StateBackend } from '../state/backend.js';

/** ApiMetrics holds the host's metrics. */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly reconcileDuration: Histogram<'outcome'>;
  readonly sseDropped: Counter<'reason'>;
  readonly jobSkew: Histogram<'phase'>;
  /** subscribers is the number of open event streams (kept by the SSE handler). */
  subscribers = 0;

  constructor(backend: StateBackend, opts: { defaults?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaults) collectDefaultMetrics({ register: this.registry, prefix: 'factory_' });
    this.requestDuration = new Histogram({
      name: 'factory_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'factory_reconcile_pass_duration_seconds',
      help: 'Duration of supervision (reconcile) passes',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.jobSkew = new Histogram({
      name: 'factory_job_run_skew_seconds',
      help: "How late job runs are against their slot: phase dispatch (start sent to the agent) or start (process running)",
      labelNames: ['phase'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers,
    });
    new Gauge({
      name: 'factory_job_runs',
      help: 'Job runs kept in the state by state (claimed, running, waiting, succeeded, failed, stopped, missed)',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of countBy(backend.view().list('runs').map((r) => r.state))) this.set({ state }, n);
      },
    });
    this.sseDropped = new Counter({ name: 'factory_event_subscribers_dropped_total', help: 'Event streams the host closed (slow reader, ...)', labelNames: ['reason'], registers });
    const self = this;
    new Gauge({
      name: 'factory_tasks',
      help: 'Tasks in the state by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of countBy(backend.view().list('tasks').map((t) => t.state))) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'factory_agents',
      help: 'Agents in the state by state (draining counted as draining)',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of countBy(backend.view().list('agents').map((a) => (a.draining ? 'draining' : a.state)))) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'factory_event_subscribers',
      help: 'Open event streams (GET /v1/events)',
      registers,
      collect() {
        this.set(self.subscribers);
      },
    });
    new Gauge({
      name: 'factory_state_write_bytes',
      help: 'Bytes written to the state since the host started',
      registers,
      collect() {
        this.set(backend.stats().bytesWritten);
      },
    });
    new Gauge({
      name: 'factory_state_commits',
      help: 'State transactions committed since the host started',
      registers,
      collect() {
        this.set(backend.stats().commits);
      },
    });
    new Gauge({
      name: 'factory_state_revision',
      help: 'Newest committed state revision',
      registers,
      collect() {
        this.set(backend.view().rev);
      },
    });
  }

  /** observeJobRun records how late a run's start was sent and its process ran, against its slot. */
  observeJobRun(m: { dispatchMs: number; startMs?: number }): void {
    this.jobSkew.observe({ phase: 'dispatch' }, Math.max(0, m.dispatchMs) / 1000);
    if (m.startMs !== undefined) this.jobSkew.observe({ phase: 'start' }, Math.max(0, m.startMs) / 1000);
  }

  /** observeReconcile records one supervision pass (the host's reconcile loop calls it). */
  observeReconcile(seconds: number, ok: boolean): void {
    this.reconcileDuration.observe({ outcome: ok ? 'ok' : 'failed' }, seconds);
  }
}

function countBy(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}
