/**
 * A resource plan's deployment (total + shapes), step by step over a fake group of VMs that carries
 * the decisions out as the scheduler and libvirt would (a stopped VM goes, a started one boots and
 * turns healthy or unhealthy after a while), on a fake clock: batches counted in cpus, the capacity
 * (healthy cpus) and the cpus in use at every step, failure on the first batch, the revert, the end.
 */
import { describe, expect, it } from 'vitest';
import { newSplit, stepResourcePlan, type RollDecision, type RollTask } from '../../src/deploy/resource-roll.js';
import type { DeploymentRecord } from '../../src/deploy/types.js';
import type { GroupSpec, UpdatePolicy, VmShape } from '../../src/spec/model.js';
import { DEFAULT_UPDATE } from '../../src/spec/update.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const GiB = 1024 ** 3;
const vm = (cpus: number): VmShape => ({ cpus, mem: cpus * GiB, disk: 0, gpus: 0 });

function spec(image: string, shapes: VmShape[], total = 8): GroupSpec {
  return {
    name: 'web', kind: 'vm', driver: 'libvirt', count: 0, everyAgent: false, resources: { cpus: 1, mem: GiB, disk: 0, gpus: 0, scalars: {}, ports: [] },
    constraints: [], strategy: 'binpack', image, env: {}, stopGraceMs: 0, restart: 'always', line: 1, col: 1, total: { cpus: total }, shapes,
  } as GroupSpec;
}

function deployment(policy: Partial<UpdatePolicy>, over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  const at = new Date(T0).toISOString();
  return {
    id: 'dep-0000000001', plan: 'p', group: 'web', project: 'default', fromHash: 'old', toHash: 'new',
    fromSpec: spec('v1', [vm(4), vm(2)]), toSpec: spec('v2', [vm(4)]),
    policy: { ...DEFAULT_UPDATE, minHealthyTimeMs: 1000, ...policy }, status: 'running', promoted: true, tasks: [], old: 3,
    createdAt: at, updatedAt: at, progressAt: at, ...over,
  };
}

interface FakeVm extends RollTask {
  healthyAt?: number;
  unhealthyAt?: number;
}

/** FakeVms carries decisions out and measures, before every step, the healthy cpus and the cpus in use. */
class FakeVms {
  vms = new Map<number, FakeVm>();
  now = T0;
  minCapacity = Infinity;
  maxInUse = 0;
  steps = 0;
  starts: number[] = [];
  decisions: RollDecision[] = [];

  constructor(public d: DeploymentRecord, old: { cpus: number; hash?: string }[], readonly version: { bootMs: number } | { failMs: number }) {
    old.forEach((o, i) => this.vms.set(i, { task: `p/web/${i}`, index: i, specHash: o.hash ?? 'old', state: 'running', power: 'running', health: 'healthy', startedAt: new Date(T0 - 60_000).toISOString(), shape: vm(o.cpus) }));
  }

  tick(): RollDecision {
    for (const t of this.vms.values()) {
      if (t.healthyAt !== undefined && this.now >= t.healthyAt) t.health = 'healthy';
      if (t.unhealthyAt !== undefined && this.now >= t.unhealthyAt) t.health = 'unhealthy';
    }
    const live = [...this.vms.values()];
    this.minCapacity = Math.min(this.minCapacity, live.filter((t) => t.health === 'healthy').reduce((a, t) => a + t.shape.cpus, 0));
    this.maxInUse = Math.max(this.maxInUse, live.reduce((a, t) => a + t.shape.cpus, 0));
    const dec = stepResourcePlan({ deployment: this.d, hasHealthCheck: true, tasks: live.map((t) => ({ ...t })), now: this.now });
    this.decisions.push(dec);
    this.d = dec.deployment;
    this.steps++;
    // carry it out as the scheduler's plan is applied: stops first, then starts
    for (const id of dec.stop) this.vms.delete(Number(id.split('/')[2]));
    for (const s of dec.start) {
      const t: FakeVm = { task: `p/web/${s.index}`, index: s.index, specHash: this.d.toHash, state: 'running', power: 'running', health: 'starting', startedAt: new Date(this.now).toISOString(), shape: s.shape };
      if ('bootMs' in this.version) t.healthyAt = this.now + this.version.bootMs;
      else t.unhealthyAt = this.now + this.version.failMs;
      this.vms.set(s.index, t);
      this.starts.push(s.index);
    }
    this.now += 100;
    return dec;
  }

  runUntilFinal(maxSteps = 10_000): void {
    while (['running', 'paused'].includes(this.d.status) && this.steps < maxSteps) this.tick();
    this.tick();
  }

  /** layout is the group as `index:hash:cpus`. */
  layout(): string {
    return [...this.vms.values()].sort((a, b) => a.index - b.index).map((t) => `${t.index}:${t.specHash}:${t.shape.cpus}`).join(' ');
  }
}

describe('newSplit', () => {
  it('splits the total into the fewest VMs of the shapes, largest first, keeping live new VMs that fit', () => {
    expect(newSplit(8, [vm(4), vm(2)], [])).toEqual([vm(4), vm(4)]);
    expect(newSplit(10, [vm(4), vm(2)], [])).toEqual([vm(4), vm(4), vm(2)]);
    expect(newSplit(8, [vm(4), vm(2)], [{ index: 1, shape: vm(2), live: true }, { index: 2, shape: vm(2), live: true }, { index: 5, shape: vm(2), live: false }])).toEqual([vm(4), { ...vm(2), index: 1 }, { ...vm(2), index: 2 }]);
    expect(newSplit(7, [vm(4), vm(2)], [])).toBeUndefined();
  });
});

describe('rolling a resource plan of 8 cpus (4 + 2 + 2) to VMs of 4 cpus', () => {
  it('maxSurge 0: a batch stops old VMs worth maxParallel old VMs (the largest) first; capacity dips by that and no more', () => {
    const g = new FakeVms(deployment({ maxParallel: 1, maxSurge: 0 }), [{ cpus: 4 }, { cpus: 2 }, { cpus: 2 }], { bootMs: 500 });
    const first = g.tick();
    expect(g.d).toMatchObject({ split: [{ ...vm(4), index: 0 }, vm(4)], batchCpus: 4, surgeCpus: 0 });
    expect(first.stop).toEqual(['p/web/0']);
    expect(first.start).toEqual([{ index: 0, shape: vm(4) }]);
    // the next batch waits for the first to count healthy: nothing moves meanwhile
    expect(g.tick()).toMatchObject({ stop: [], start: [] });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.minCapacity).toBe(8 - 4);
    expect(g.maxInUse).toBe(8);
    expect(g.layout()).toBe('0:new:4 1:new:4');
    expect(g.starts).toEqual([0, 1]);
    expect(g.d.split).toEqual([{ ...vm(4), index: 0 }, { ...vm(4), index: 1 }]);
    expect(g.d.tasks.map((t) => [t.task, t.state])).toEqual([['p/web/0', 'healthy'], ['p/web/1', 'healthy']]);
    expect(g.d.old).toBe(0);
  });

  it('maxSurge 1: new VMs start first, in use never above total + the largest old VM, capacity never below the total', () => {
    const g = new FakeVms(deployment({ maxParallel: 1, maxSurge: 1 }), [{ cpus: 4 }, { cpus: 2 }, { cpus: 2 }], { bootMs: 500 });
    const first = g.tick();
    expect(first).toMatchObject({ stop: [], start: [{ index: 3, shape: vm(4) }] });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.minCapacity).toBe(8);
    expect(g.maxInUse).toBe(8 + 4);
    expect(g.layout()).toBe('0:new:4 3:new:4');
    expect(new Set(g.starts).size).toBe(g.starts.length);
  });

  it('batches are counted in cpus: maxParallel 2 of four 2-cpu VMs is a batch of 4 cpus, one new 4-cpu VM', () => {
    const g = new FakeVms(deployment({ maxParallel: 2, maxSurge: 0 }), [{ cpus: 2 }, { cpus: 2 }, { cpus: 2 }, { cpus: 2 }], { bootMs: 500 });
    const first = g.tick();
    expect(first.stop).toEqual(['p/web/0', 'p/web/1']);
    expect(first.start).toEqual([{ index: 0, shape: vm(4) }]);
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.minCapacity).toBe(4);
    expect(g.maxInUse).toBe(8);
    expect(g.layout()).toBe('0:new:4 1:new:4');
    // every step's batch: new cpus in flight never above the batch
    for (const dec of g.decisions) expect(dec.start.reduce((a, s) => a + s.shape.cpus, 0)).toBeLessThanOrEqual(4);
  });

  it('is deterministic: the same group rolled twice takes the same decisions', () => {
    const run = () => {
      const g = new FakeVms(deployment({ maxParallel: 2, maxSurge: 1 }), [{ cpus: 4 }, { cpus: 2 }, { cpus: 2 }, { cpus: 2 }, { cpus: 2 }], { bootMs: 300 });
      g.d = { ...g.d, toSpec: spec('v2', [vm(4), vm(2)], 12) };
      g.runUntilFinal();
      return { status: g.d.status, layout: g.layout(), decisions: g.decisions.map((x) => [x.stop, x.start]) };
    };
    const a = run();
    expect(a.status).toBe('succeeded');
    expect(a.layout.split(' ').map((x) => x.split(':').slice(1).join(':'))).toEqual(['new:4', 'new:4', 'new:4']);
    expect(run()).toEqual(a);
  });

  it('a version that fails its check stops at the first batch: the other old VMs keep running; autoRevert rolls the group back', () => {
    const g = new FakeVms(deployment({ maxParallel: 1, maxSurge: 0, autoRevert: true, healthyDeadlineMs: 60_000 }), [{ cpus: 4 }, { cpus: 2 }, { cpus: 2 }], { failMs: 300 });
    g.runUntilFinal();
    expect(g.d.status).toBe('failed');
    expect(g.decisions.at(-2)!.revert).toBe(true);
    expect(g.layout()).toBe('0:new:4 1:old:2 2:old:2');
    expect(g.starts).toEqual([0]);
    expect(g.minCapacity).toBe(4);
    // the revert (pass.ts startRevert): a deployment back to the old spec, with the same rules
    const at = new Date(g.now).toISOString();
    const back = deployment({ maxParallel: 1, maxSurge: 0 }, { id: 'dep-0000000002', fromHash: 'new', toHash: 'old', toSpec: g.d.fromSpec!, revertOf: g.d.id, createdAt: at, updatedAt: at, progressAt: at });
    const r = new FakeVms(back, [], { bootMs: 300 });
    r.vms = g.vms;
    r.now = g.now;
    r.runUntilFinal();
    expect(r.d.status).toBe('succeeded');
    // the old VMs that kept running are part of the split; the failed new one is stopped first (it costs no capacity)
    expect(r.decisions[0]!.stop).toEqual(['p/web/0']);
    expect(r.d.split).toEqual([{ ...vm(4), index: 0 }, { ...vm(2), index: 1 }, { ...vm(2), index: 2 }]);
    expect(r.layout()).toBe('0:old:4 1:old:2 2:old:2');
  });

  it('its progress is all in the record: a host that reads it back from the state at every step takes the same decisions', () => {
    const run = (restartEveryStep: boolean) => {
      const g = new FakeVms(deployment({ maxParallel: 1, maxSurge: 1 }), [{ cpus: 4 }, { cpus: 2 }, { cpus: 2 }], { bootMs: 300 });
      while (['running', 'paused'].includes(g.d.status) && g.steps < 1000) {
        if (restartEveryStep) g.d = JSON.parse(JSON.stringify(g.d)) as DeploymentRecord; // a new host: the record as stored
        g.tick();
      }
      return { status: g.d.status, layout: g.layout(), starts: g.starts, decisions: g.decisions.map((x) => [x.stop, x.start]) };
    };
    const once = run(false);
    expect(once.status).toBe('succeeded');
    expect(run(true)).toEqual(once);
  });

  it('a total the new shapes cannot sum to fails at once, touching nothing', () => {
    const g = new FakeVms(deployment({}, { toSpec: spec('v2', [vm(3)]) }), [{ cpus: 4 }, { cpus: 2 }, { cpus: 2 }], { bootMs: 500 });
    const first = g.tick();
    expect(first).toMatchObject({ stop: [], start: [] });
    expect(g.d).toMatchObject({ status: 'failed', message: '8 cpus is not a sum of VMs of 3 cpus' });
  });
});
