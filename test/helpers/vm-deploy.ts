/**
 * The setup the real-libvirtd deployment test files share (test/libvirt/vm-deploy.test.ts,
 * vm-rplan-deploy.test.ts): a state folder QEMU can reach, the built CLI on it, `plan apply` of one
 * plan file, the plan's tasks from `status`, images `good` (the test guest answering TCP 8080) and
 * `bad` (nothing answers), and the healthy count sampled from the VMs' health files in the agent's
 * VM store while a deployment runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { runCli } from './cli.js';
import { sampleEvery } from './sample-every.js';
import { makeGuestImageSource } from '../harness/libvirtd.js';

/** VM_ROLL is the update block of a one-at-a-time, health-gated roll (maxParallel 1, maxSurge 0). */
export const VM_ROLL = 'maxParallel: 1, maxSurge: 0, minHealthyTime: 1s, healthyDeadline: 90s, progressDeadline: 0s';

/** VmDeployTask is one task row of `status --json`. */
export interface VmDeployTask {
  task: string;
  state: string;
  power?: string;
  health?: string;
}

/** VmRecord is a VM's vm.json: its domain, the id of its base image, when it started. */
export interface VmRecord {
  domain: string;
  image: string;
  startedAt: string;
}

/** VmDeployFixture drives plan `planName` (file <work>/<planName>.yaml, state <work>/state) with the built CLI. */
export class VmDeployFixture {
  /** state is the CLI's --state folder; the local agent's VM store is under it. */
  readonly state: string;
  /** plan is the plan file apply writes and applies. */
  readonly plan: string;

  constructor(
    readonly workDir: string,
    readonly planName: string,
  ) {
    this.state = path.join(workDir, 'state');
    this.plan = path.join(workDir, `${planName}.yaml`);
  }

  /** cli runs the built CLI on this fixture's state, from the work folder. */
  async cli(args: string[], timeoutMs = 150_000) {
    return runCli([...args, '--state', this.state], { cwd: this.workDir, timeoutMs });
  }

  /** apply writes text to the plan file and runs `plan apply --json`; doc is its parsed stdout. */
  async apply(text: string) {
    fs.writeFileSync(this.plan, text);
    const r = await this.cli(['plan', 'apply', this.plan, '--json']);
    return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
  }

  /** tasks is the plan's tasks as `status --json` shows them. */
  async tasks(): Promise<VmDeployTask[]> {
    const r = await this.cli(['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { tasks: VmDeployTask[] }).tasks.filter((t) => t.task.startsWith(`${this.planName}/`));
  }

  /** pushImages creates the state folder and pushes images `good` (listens on 8080) and `bad` (does not). */
  async pushImages(): Promise<void> {
    fs.mkdirSync(this.state, { recursive: true });
    const good = makeGuestImageSource(path.join(this.workDir, 'good'));
    fs.writeFileSync(path.join(good, 'cmdline'), `${fs.readFileSync(path.join(good, 'cmdline'), 'utf8').trim()} factory.listen=8080\n`);
    const bad = makeGuestImageSource(path.join(this.workDir, 'bad'));
    for (const [dir, name] of [[good, 'good'], [bad, 'bad']] as const) {
      const r = await this.cli(['vm', 'push', dir, '--name', name, '--json']);
      expect(r.code, r.stderr).toBe(0);
    }
  }

  /** storeDir is the local agent's VM store (resolved: the VM folders' names are under it). */
  storeDir(): string {
    return fs.realpathSync(path.join(this.state, 'agents', 'local', 'vm-store'));
  }

  /** sample counts the `<plan>.web.*` VMs whose prober says healthy now. */
  sample(): { healthy: number } {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(this.storeDir(), 'vms')).filter((n) => n.startsWith(`${this.planName}.web.`));
    } catch {
      return { healthy: 0 };
    }
    let healthy = 0;
    for (const n of names) {
      try {
        if (fs.readFileSync(path.join(this.storeDir(), 'vms', n, 'health'), 'utf8').split(' ')[0] === 'healthy') healthy++;
      } catch {
        /* booting: no check written yet */
      }
    }
    return { healthy };
  }

  /** sampling samples every 250 ms until stop(), which returns the samples (one before, one after). */
  sampling(): { stop: () => { healthy: number }[] } {
    return sampleEvery(() => this.sample(), 250);
  }

  /** vmRecord is task's vm.json. */
  vmRecord(task: string): VmRecord {
    const dir = fs.readdirSync(path.join(this.storeDir(), 'vms')).find((n) => n.startsWith(`${task.replace(/\//g, '.')}_`))!;
    return JSON.parse(fs.readFileSync(path.join(this.storeDir(), 'vms', dir, 'vm.json'), 'utf8')) as VmRecord;
  }
}
