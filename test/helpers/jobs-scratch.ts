/**
 * JobsScratch is one scheduled-jobs end-to-end setting: a temp folder with a state and one plan, the
 * control host that runs its jobs (the built CLI's `factory control serve`), and the CLI's JSON views
 * of jobs, runs and events. Everything is read through the CLI (or, for polls, the host's API), never
 * from the state's files.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import type { JobView } from '../../src/control/jobs.js';
import { parseSchedule, slotsBetween } from '../../src/jobs/schedule.js';
import type { RunRecord } from '../../src/jobs/types.js';
import type { EventRecord } from '../../src/state/backend.js';
import { hostGet, startControlHost, type RunningHost } from './control-host.js';
import { pidAlive, runCli, scratchDir, type CliResult } from './cli.js';
import { HostEvents, type HostEvent } from './host-events.js';

/**
 * JOB_TEST_MS bounds each jobs end-to-end test: its waits add up past vitest's default 30 s on a
 * loaded machine (a test of jobs-commands.test.ts took up to 76 s beside two CPU burners on 2 shared
 * cores, 8 to 15 s on a quiet one). The waits on the host's events (until) may use all of it.
 */
export const JOB_TEST_MS = 120_000;

/** UNTIL_MARGIN_MS is what a wait on the host's events leaves of the test's budget, for its message and the cleanup. */
const UNTIL_MARGIN_MS = 8_000;

const EVERY_SECOND = parseSchedule('* * * * * *');

/** secondsFrom lists the per-second slots (ISO, UTC) from first to last, both included. */
export function secondsFrom(first: string, last: string): string[] {
  return slotsBetween(EVERY_SECOND, Date.parse(first) - 1, Date.parse(last)).slots.map((t) => new Date(t).toISOString());
}

/** scratchPerTest returns what makes a test's scratch; each is closed after its test. */
export function scratchPerTest(): (prefix: string) => JobsScratch {
  let current: JobsScratch | undefined;
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return (prefix) => (current = new JobsScratch(prefix));
}

/** JobEvent is a job event as the CLI prints it. */
export type JobEvent = EventRecord & { job?: string; run?: string; slot?: string };

/** JobsScratch holds one state, its plan and its control host. */
export class JobsScratch {
  readonly dir: string;
  readonly state: string;
  readonly planFile: string;
  host?: RunningHost;
  /** stream follows the host's events from the state's first revision, once a test waits on them (until), to stopHost. */
  stream?: HostEvents;
  private readonly cleanup: () => void;
  /** budgetEnd is when the test's budget (JOB_TEST_MS from this scratch) is spent, less UNTIL_MARGIN_MS. */
  private readonly budgetEnd = Date.now() + JOB_TEST_MS - UNTIL_MARGIN_MS;

  constructor(
    prefix: string,
    /** env is given to the host and to every CLI run (FACTORY_EVENTS_* for instance). */
    readonly env: Record<string, string> = {},
  ) {
    const s = scratchDir(prefix);
    this.dir = s.dir;
    this.cleanup = s.cleanup;
    this.state = path.join(s.dir, 'state');
    this.planFile = path.join(s.dir, 'plan.yaml');
  }

  /** file is a path in the scratch folder. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** cli runs the built CLI on this state (through the host when one serves it). */
  cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli([...args, '--state', this.state], { cwd: this.dir, env: { ...this.env, ...env } });
  }

  /** json runs a command with --json, expects exit 0 and parses its output. */
  async json<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
    const r = await this.cli([...args, '--json'], env);
    expect(r.code, `factory ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  }

  /** apply writes the plan and applies it (through the host when one serves the state). */
  async apply(yaml: string): Promise<void> {
    writeFileSync(this.planFile, yaml);
    await this.json(['plan', 'apply', this.planFile]);
  }

  /** startHost starts `factory control serve` on the state. */
  async startHost(): Promise<RunningHost> {
    this.host = await startControlHost(this.state, { cwd: this.dir, env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...this.env } });
    return this.host;
  }

  /** stopHost stops the host (SIGTERM): the state holds still for the reads that follow; runs keep running. */
  async stopHost(): Promise<void> {
    this.stream?.close();
    this.stream = undefined;
    await this.host?.stop();
  }

  /**
   * until waits for the first event of the host (since it started) that matches, as it happens, for
   * as long as the test's budget allows: what the test waits for follows what the host does, however
   * slow the machine, and a failure says what it waited for and the host's last events. An event
   * matching fail first fails at once.
   */
  until(what: string, match: (e: HostEvent) => boolean, fail?: (e: HostEvent) => boolean): Promise<HostEvent> {
    if (!this.host) throw new Error(`waiting for ${what}: no host started`);
    this.stream ??= new HostEvents(this.state);
    return this.stream.until(what, match, { timeoutMs: this.timeLeft(), ...(fail ? { fail } : {}) });
  }

  /** received are the host's events that match among those its stream delivered so far (in revision order: all of them up to the last one an until() returned). */
  received(match: (e: HostEvent) => boolean): HostEvent[] {
    return (this.stream?.events ?? []).filter(match);
  }

  /** untilCount waits for the n-th event of the host that matches (see until). */
  untilCount(what: string, n: number, match: (e: HostEvent) => boolean): Promise<HostEvent> {
    let seen = 0;
    return this.until(what, (e) => match(e) && ++seen >= n);
  }

  /** timeLeft is how long a wait may last: the rest of the test's budget (less a margin for its message and the cleanup). */
  timeLeft(): number {
    return Math.max(1000, this.budgetEnd - Date.now());
  }

  /** runEnded waits for a run's end (job-run-succeeded, -failed, -stopped, or job-slot-missed of the run) and returns its event. */
  runEnded(run: string): Promise<HostEvent> {
    return this.until(`run ${run} to end`, (e) => e.run === run && ['job-run-succeeded', 'job-run-failed', 'job-run-stopped', 'job-slot-missed'].includes(e.kind));
  }

  /**
   * api GETs a path of the host's API on its unix socket (no token needed there): cheaper than a CLI
   * run, for the polls that wait for something to happen.
   */
  api<T>(urlPath: string): Promise<T> {
    return hostGet<T>(this.state, urlPath);
  }

  /** liveRuns are a job's runs (`plan/job`) from the host's API, oldest slot first. */
  async liveRuns(job: string): Promise<RunRecord[]> {
    const out = await this.api<{ runs: RunRecord[] }>(`/v1/jobs/${job}/runs`);
    return out.runs.sort((a, b) => a.slot.localeCompare(b.slot));
  }

  /** liveJob is a job (`plan/job`) as the host's API lists it. */
  async liveJob(id: string): Promise<JobView> {
    const j = (await this.api<{ jobs: JobView[] }>('/v1/jobs')).jobs.find((x) => x.id === id);
    if (!j) throw new Error(`no job ${id} on the host`);
    return j;
  }

  /** jobs is `factory jobs list --json`. */
  async jobs(): Promise<JobView[]> {
    return (await this.json<{ jobs: JobView[] }>(['jobs', 'list'])).jobs;
  }

  /** job is one job of `factory jobs list --json`. */
  async job(id: string): Promise<JobView> {
    const j = (await this.jobs()).find((x) => x.id === id);
    expect(j, `job ${id} in jobs list`).toBeDefined();
    return j!;
  }

  /** runs is `factory jobs history JOB --json`, oldest slot first. */
  async runs(job: string): Promise<RunRecord[]> {
    const out = await this.json<{ job: string; runs: RunRecord[] }>(['jobs', 'history', job]);
    return out.runs.sort((a, b) => a.slot.localeCompare(b.slot));
  }

  /**
   * events are the state's events (all kept), oldest first: `factory events --json` from the host when
   * one runs, else `factory status --cached --events` read alone.
   */
  async events(kind?: string): Promise<JobEvent[]> {
    let all: JobEvent[];
    if (this.host && pidAlive(this.host.pid)) {
      const r = await this.cli(['events', '--json']);
      expect(r.code, r.stderr).toBe(0);
      all = r.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as JobEvent);
    } else {
      all = (await this.json<{ events: JobEvent[] }>(['status', '--cached', '--events', '10000000'], { FACTORY_CONTROL: 'off' })).events;
    }
    return kind ? all.filter((e) => e.kind === kind) : all;
  }

  /** taskFolders are the task folders in the embedded agent's work dir (<state>/agents/local/tasks). */
  taskFolders(): string[] {
    try {
      return readdirSync(path.join(this.state, 'agents', 'local', 'tasks')).sort();
    } catch {
      return [];
    }
  }

  /** lines are the lines of a file the runs append to (none when it does not exist yet). */
  lines(name: string): string[] {
    try {
      return readFileSync(this.file(name), 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      return [];
    }
  }

  /**
   * close stops the host, kills what is left of the runs it started (their process groups, found by
   * pid: processes whose FACTORY_TASK_DIR is in this state's agent folder) and removes the folder.
   */
  async close(): Promise<void> {
    try {
      this.stream?.close();
      await this.host?.stop();
    } finally {
      killRuns(this.state);
      this.cleanup();
    }
  }
}

/**
 * killRuns kills the process groups (shim, command and its children) of the run processes of a state:
 * those whose FACTORY_TASK_DIR (set by the executor for every task) is under the state's folder.
 */
export function killRuns(state: string): void {
  const mark = `FACTORY_TASK_DIR=${state}/`;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let env: string;
    let stat: string;
    try {
      env = readFileSync(`/proc/${name}/environ`, 'utf8');
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!env.split('\0').some((v) => v.startsWith(mark))) continue;
    const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}
