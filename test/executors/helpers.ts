/** Test helpers for the executor tests: temp workDirs, task specs and by-pid cleanup. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TaskRunSpec, TaskStatus } from '../../src/protocol/messages.js';
import { isAlive } from '../../src/executors/drivers/process/index.js';

/** makeSpec builds a process TaskRunSpec for tests. */
export function makeSpec(task: string, command: string[], over: Partial<TaskRunSpec> = {}): TaskRunSpec {
  const [plan = 'p', group = 'g'] = task.split('/');
  return {
    task,
    driver: 'process',
    specHash: 'h1',
    command,
    env: {},
    resources: { cpus: 0.5, mem: 64 * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] },
    labels: { plan, group, project: 'test' },
    stopGraceMs: 1000,
    ...over,
  };
}

/** tempDir makes a fresh temp folder. */
export function tempDir(prefix = 'factory-exec-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Reaper remembers every pid/pgid a test started and SIGKILLs the survivors by pid. */
export class Reaper {
  private pids = new Set<number>();
  private groups = new Set<number>();

  /** track records a status's pid and the process group recorded in its marker. */
  track(s: TaskStatus | undefined, workDir?: string): void {
    if (s?.pid) this.pids.add(s.pid);
    if (s && workDir) {
      try {
        const m = JSON.parse(fs.readFileSync(path.join(workDir, 'tasks', s.task.replace(/\//g, '.'), 'task.json'), 'utf8')) as { pgid?: number };
        if (m.pgid) this.groups.add(m.pgid);
      } catch {
        /* no marker */
      }
    }
  }

  /** reap kills what is still alive. */
  reap(): void {
    for (const g of this.groups) {
      try {
        if (isAlive(g)) process.kill(-g, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const p of this.pids) {
      try {
        if (isAlive(p)) process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.pids.clear();
    this.groups.clear();
  }
}

/** waitFor polls fn until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`waitFor: timed out after ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** cgroupV1 is true when the memory and cpu v1 hierarchies are mounted here. */
export const cgroupV1 = fs.existsSync('/sys/fs/cgroup/memory/cgroup.procs') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
