/**
 * The cgroups of process tasks. One group per task and hierarchy, named `<task folder>-<8 hex of
 * sha256(workDir)>` so several workDirs on one host never collide:
 *
 *   v1  <root>/{cpu,memory,pids}/<the executor's own cgroup>/factory/<name>
 *       cpu.cfs_period_us = 100000, cpu.cfs_quota_us = cpus × 100000, memory.limit_in_bytes
 *   v2  <root>/factory/<name>   (controllers enabled in the parents' cgroup.subtree_control)
 *       cpu.max = "<cpus × 100000> 100000", memory.max
 *
 * FACTORY_CGROUP_PARENT replaces the parent path (`factory`, or the executor's own cgroup + `/factory`).
 * The shim joins a group by writing its pid to the group's cgroup.procs; a group can be removed once
 * empty, which is why removal is retried.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LimitsMode, TaskRunSpec } from '../../../protocol/messages.js';
import { ownCgroup } from '../../discovery.js';
import { readFileOr } from './task-files.js';

/** TaskCgroups creates, limits and removes the cgroups of one workDir's process tasks. */
export class TaskCgroups {
  constructor(
    private readonly opts: {
      /** root is the cgroup mount point (CGROUP_ROOT unless a test says otherwise). */
      root: string;
      /** limits picks the hierarchy: cgroup-v1 or cgroup-v2. */
      limits: LimitsMode;
      workDir: string;
      log: (msg: string) => void;
    },
  ) {}

  private groupName(dir: string): string {
    const h = createHash('sha256').update(path.resolve(this.opts.workDir)).digest('hex').slice(0, 8);
    return `${path.basename(dir)}-${h}`;
  }

  /** create makes and limits the cgroups of the task in folder dir; returns them and the cgroup.procs files the shim joins. */
  create(spec: TaskRunSpec, dir: string): { dirs: string[]; procs: string[] } {
    const root = this.opts.root;
    const name = this.groupName(dir);
    const dirs: string[] = [];
    const cpus = spec.resources?.cpus ?? 0;
    const mem = spec.resources?.mem ?? 0;
    const quota = Math.max(1000, Math.round(cpus * 100000));
    try {
      if (this.opts.limits === 'cgroup-v2') {
        const parent = path.join(root, process.env.FACTORY_CGROUP_PARENT ?? 'factory');
        fs.mkdirSync(parent, { recursive: true });
        const avail = (readFileOr(path.join(root, 'cgroup.controllers')) ?? '').split(/\s+/);
        const want = ['cpu', 'memory', 'pids'].filter((c) => avail.includes(c));
        for (const c of want) {
          for (const p of [root, parent]) {
            try {
              fs.writeFileSync(path.join(p, 'cgroup.subtree_control'), `+${c}`);
            } catch {
              /* already enabled, or not allowed here: limits below will say */
            }
          }
        }
        const cg = path.join(parent, name);
        fs.mkdirSync(cg, { recursive: true });
        dirs.push(cg);
        if (cpus > 0) fs.writeFileSync(path.join(cg, 'cpu.max'), `${quota} 100000`);
        if (mem > 0) fs.writeFileSync(path.join(cg, 'memory.max'), String(Math.floor(mem)));
      } else {
        for (const ctrl of ['cpu', 'memory', 'pids']) {
          const mount = path.join(root, ctrl);
          if (!fs.existsSync(path.join(mount, 'cgroup.procs'))) continue;
          const parent = process.env.FACTORY_CGROUP_PARENT ?? path.join(ownCgroup(ctrl), 'factory');
          const cg = path.join(mount, parent, name);
          fs.mkdirSync(cg, { recursive: true });
          dirs.push(cg);
          if (ctrl === 'cpu' && cpus > 0) {
            fs.writeFileSync(path.join(cg, 'cpu.cfs_period_us'), '100000');
            fs.writeFileSync(path.join(cg, 'cpu.cfs_quota_us'), String(quota));
          }
          if (ctrl === 'memory' && mem > 0) fs.writeFileSync(path.join(cg, 'memory.limit_in_bytes'), String(Math.floor(mem)));
        }
      }
    } catch (err) {
      removeNow(dirs);
      throw err;
    }
    return { dirs, procs: dirs.map((d) => path.join(d, 'cgroup.procs')) };
  }

  /** remove deletes the groups, retrying for up to 2.5 s while they still hold processes; it logs, never throws. */
  async remove(dirs: string[]): Promise<void> {
    for (let i = 0; i < 50; i++) {
      if (removeNow(dirs)) return;
      await sleep(50);
    }
    this.opts.log(`process driver: could not remove cgroups ${dirs.join(', ')}`);
  }
}

function removeNow(dirs: string[]): boolean {
  let ok = true;
  for (const d of dirs) {
    try {
      fs.rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') ok = false;
    }
  }
  return ok;
}
