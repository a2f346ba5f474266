/**
 * FakeAgents is a RunAgents for unit tests of the scheduler of runs: one agent whose executor keeps
 * tasks in memory with the run-once rule of the real executors, and a clock the test moves.
 */
import { AgentError } from '../../src/errors.js';
import type { PlacementView, RunAgents, RunExecutor } from '../../src/jobs/agents.js';
import type { TaskRunSpec, TaskStatus } from '../../src/protocol/messages.js';

/** FakeTask is one task the fake executor holds. */
export interface FakeTask {
  spec: TaskRunSpec;
  status: TaskStatus;
  starts: number;
}

/** FakeClock is a clock a test sets. */
export class FakeClock {
  constructor(public t: number) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** FakeAgents holds one agent, `local`, with 2 cpus. */
export class FakeAgents implements RunAgents {
  readonly tasks = new Map<string, FakeTask>();
  /** down makes every call fail as an unreachable agent would. */
  down = false;
  /** starts counts run calls that started a task (not the answered-as-is ones). */
  started: string[] = [];
  /** tooLate lists the run-once starts refused as past their notAfter (E_TOO_LATE), as the real drivers do. */
  tooLate: string[] = [];
  /** inspectGate, while set, holds every inspect until it resolves (an agent slow to answer). */
  private inspectGate?: Promise<void>;
  /** runGate, while set, holds every run until it resolves (an agent slow to start). */
  private runGate?: Promise<void>;

  constructor(private readonly clock: FakeClock) {}

  async view(): Promise<PlacementView> {
    return {
      agents: [{ name: 'local', idc: 'dc', cluster: 'c', state: 'ready', capacity: { cpus: 2, mem: 8 * 2 ** 30, disk: 100 * 2 ** 30, gpus: 0, scalars: {} }, attributes: {}, drivers: ['process', 'docker'] }],
      actual: [],
    };
  }

  private check(): void {
    if (this.down) throw new Error('agent local: unreachable');
  }

  async executor(): Promise<RunExecutor> {
    this.check();
    const now = () => new Date(this.clock.now()).toISOString();
    return {
      run: async (spec) => {
        this.check();
        await this.runGate;
        const held = this.tasks.get(spec.task);
        if (held && spec.once) return held.status;
        if (spec.notAfter !== undefined && this.clock.now() > spec.notAfter) {
          this.tooLate.push(spec.task);
          throw new AgentError('local', `run ${spec.task}: not started: it reached the executor ${this.clock.now() - spec.notAfter} ms after its deadline`, { code: 'E_TOO_LATE' });
        }
        const status: TaskStatus = { task: spec.task, driver: spec.driver, state: 'running', specHash: spec.specHash, labels: spec.labels, pid: 1000 + this.tasks.size, startedAt: now() };
        this.tasks.set(spec.task, { spec, status, starts: (held?.starts ?? 0) + 1 });
        this.started.push(spec.task);
        return status;
      },
      stop: async (task, opts) => {
        this.check();
        const t = this.tasks.get(task);
        if (!t) throw new Error(`no task ${task}`);
        if (t.status.state === 'running') t.status = { ...t.status, state: 'exited', signal: 'SIGTERM', finishedAt: now() };
        if (opts?.remove) this.tasks.delete(task);
        return t.status;
      },
      inspect: async () => {
        this.check();
        await this.inspectGate;
        return [...this.tasks.values()].map((t) => t.status);
      },
    };
  }

  /** exit ends a running task with an exit code. */
  exit(task: string, code: number): void {
    const t = this.tasks.get(task);
    if (!t) throw new Error(`no task ${task}`);
    t.status = { ...t.status, state: 'exited', exitCode: code, finishedAt: new Date(this.clock.now()).toISOString() };
  }

  /** holdInspect makes inspect calls wait until the returned function is called. */
  holdInspect(): () => void {
    let release!: () => void;
    this.inspectGate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.inspectGate = undefined;
      release();
    };
  }

  /** holdRuns makes run calls wait until the returned function is called. */
  holdRuns(): () => void {
    let release!: () => void;
    this.runGate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.runGate = undefined;
      release();
    };
  }

  /** running lists the tasks that run. */
  running(): string[] {
    return [...this.tasks.values()].filter((t) => t.status.state === 'running').map((t) => t.spec.task);
  }

  async close(): Promise<void> {}
}
