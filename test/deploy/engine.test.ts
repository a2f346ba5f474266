/**
 * The deployment engine's decisions, over a fake group that carries them out as the scheduler and
 * the executors would (a replaced task starts again on the new spec at its index, the extra slots
 * start and stop with the count, a new task turns healthy or unhealthy after a while), on a fake
 * clock: capacity, parallelism, surge, failure, canaries and the end, step by step.
 */
import { describe, expect, it } from 'vitest';
import { promote, step, type GroupTask, type StepDecision } from '../../src/deploy/engine.js';
import type { DeploymentRecord } from '../../src/deploy/types.js';
import type { UpdatePolicy } from '../../src/spec/model.js';
import { DEFAULT_UPDATE } from '../../src/spec/update.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');

function deployment(policy: Partial<UpdatePolicy>, over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  const at = new Date(T0).toISOString();
  return {
    id: 'dep-0000000001', plan: 'p', group: 'web', project: 'default', fromHash: 'old', toHash: 'new',
    fromSpec: { name: 'web', kind: 'process', driver: 'process', count: 6, everyAgent: false, resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], strategy: 'binpack', command: ['v1'], env: {}, stopGraceMs: 0, restart: 'always', line: 1, col: 1 },
    toSpec: { name: 'web', kind: 'process', driver: 'process', count: 6, everyAgent: false, resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], strategy: 'binpack', command: ['v2'], env: {}, stopGraceMs: 0, restart: 'always', line: 1, col: 1 },
    policy: { ...DEFAULT_UPDATE, ...policy }, status: 'running', promoted: (policy.canary ?? 0) === 0, tasks: [], old: 6,
    createdAt: at, updatedAt: at, progressAt: at, ...over,
  };
}

/** FakeTask is one task of the fake group: its spec, and when (if ever) a new one turns healthy or unhealthy. */
interface FakeTask extends GroupTask {
  healthyAt?: number;
  unhealthyAt?: number;
}

/**
 * FakeGroup carries decisions out: count N + extra, replaced tasks started on the new spec, tasks
 * above the count stopped; new tasks turn healthy after `bootMs` (a good version) or unhealthy after
 * `failMs` (a bad one). It records, at every tick, how many tasks are healthy and how many exist.
 */
class FakeGroup {
  tasks = new Map<number, FakeTask>();
  now = T0;
  minHealthy = Infinity;
  maxTasks = 0;
  maxInFlight = 0;
  steps = 0;
  decisions: StepDecision[] = [];

  constructor(
    public d: DeploymentRecord,
    public n: number,
    readonly version: { bootMs: number } | { failMs: number },
  ) {
    for (let i = 0; i < n; i++) this.tasks.set(i, { task: `p/web/${i}`, index: i, specHash: 'old', state: 'running', health: 'healthy', startedAt: new Date(T0 - 60_000).toISOString() });
  }

  start(index: number): void {
    const at = this.now;
    const t: FakeTask = { task: `p/web/${index}`, index, specHash: this.d.toHash, state: 'running', health: 'starting', startedAt: new Date(at).toISOString() };
    if ('bootMs' in this.version) t.healthyAt = at + this.version.bootMs;
    else t.unhealthyAt = at + this.version.failMs;
    this.tasks.set(index, t);
  }

  tick(): StepDecision {
    for (const t of this.tasks.values()) {
      if (t.healthyAt !== undefined && this.now >= t.healthyAt) t.health = 'healthy';
      if (t.unhealthyAt !== undefined && this.now >= t.unhealthyAt) t.health = 'unhealthy';
    }
    const healthy = [...this.tasks.values()].filter((t) => t.state === 'running' && t.health === 'healthy').length;
    this.minHealthy = Math.min(this.minHealthy, healthy);
    this.maxTasks = Math.max(this.maxTasks, this.tasks.size);
    const dec = step({ deployment: this.d, count: this.n, hasHealthCheck: true, tasks: [...this.tasks.values()].map((t) => ({ ...t })), now: this.now });
    this.decisions.push(dec);
    this.d = dec.deployment;
    this.steps++;
    // carry it out: what the scheduler does with count N + extra and the replaced tasks
    for (const [i] of this.tasks) if (i >= this.n + dec.extra) this.tasks.delete(i);
    for (const id of dec.replace) this.start(Number(id.split('/')[2]));
    for (let i = 0; i < this.n + dec.extra; i++) if (!this.tasks.has(i)) this.start(i);
    const inFlight = [...this.tasks.values()].filter((t) => t.specHash === 'new' && this.d.tasks.find((r) => r.task === t.task)?.state !== 'healthy').length;
    this.maxInFlight = Math.max(this.maxInFlight, inFlight);
    this.now += 100;
    return dec;
  }

  runUntilFinal(maxSteps = 10_000): void {
    while (!['succeeded', 'failed', 'reverted', 'aborted', 'waiting-promotion'].includes(this.d.status) && this.steps < maxSteps) this.tick();
    // one more step: what a final (or waiting) deployment leaves
    this.tick();
  }

  specs(): string {
    return [...this.tasks.values()].sort((a, b) => a.index - b.index).map((t) => `${t.index}:${t.specHash}`).join(' ');
  }
}

describe('rolling a group of 6', () => {
  it('maxParallel 2, maxSurge 1: never fewer than 6 healthy, at most 7 tasks, all 6 new at the end', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 1000 }), 6, { bootMs: 500 });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.minHealthy).toBe(6);
    expect(g.maxTasks).toBe(7);
    expect(g.specs()).toBe('0:new 1:new 2:new 3:new 4:new 5:new');
    expect(g.d.tasks.map((t) => t.task)).toEqual(['p/web/0', 'p/web/1', 'p/web/2', 'p/web/3', 'p/web/4', 'p/web/5', 'p/web/6']);
    expect(g.d.tasks.every((t) => t.state === 'healthy')).toBe(true);
    expect(g.d.old).toBe(0);
  });

  it('maxParallel 2, maxSurge 2: two in flight at a time, capacity never below 6', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 2, minHealthyTimeMs: 1000 }), 6, { bootMs: 500 });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.minHealthy).toBe(6);
    expect(g.maxTasks).toBe(8);
    expect(g.maxInFlight).toBe(2);
    // extra slots 6 and 7 first, then 0+1, 2+3, 4+5: each batch takes one boot + minHealthyTime
    const first = g.decisions[0]!;
    expect([first.extra, first.replace]).toEqual([2, []]);
  });

  it('maxSurge 0 (Nomad-like batches): maxParallel old tasks stop at once, capacity dips by 2 and no more', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 0, minHealthyTimeMs: 1000 }), 6, { bootMs: 500 });
    const first = g.tick();
    expect(first.replace).toEqual(['p/web/0', 'p/web/1']);
    expect(first.extra).toBe(0);
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.minHealthy).toBe(4);
    expect(g.maxTasks).toBe(6);
    expect(g.maxInFlight).toBe(2);
  });

  it('the defaults: one task at a time, each healthy for 10 s before the next', () => {
    const g = new FakeGroup(deployment({}), 3, { bootMs: 200 });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.maxInFlight).toBe(1);
    // three tasks, each boot (0.2 s) + 10 s healthy, one after the other
    expect(g.now - T0).toBeGreaterThanOrEqual(3 * 10_200);
    expect(g.now - T0).toBeLessThan(3 * 10_200 + 1000);
  });

  it('a failed new task stops the deployment at its batch: the other old tasks keep running, autoRevert asks for the revert', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 0, minHealthyTimeMs: 1000, autoRevert: true }), 6, { failMs: 800 });
    g.runUntilFinal();
    expect(g.d.status).toBe('failed');
    expect(g.d.message).toBe('p/web/0 unhealthy; p/web/1 unhealthy');
    expect(g.specs()).toBe('0:new 1:new 2:old 3:old 4:old 5:old');
    const last = g.decisions.find((d) => d.deployment.status === 'failed')!;
    expect(last.revert).toBe(true);
    expect(last.events.map((e) => e.kind)).toEqual(['deployment-task-failed', 'deployment-task-failed', 'deployment-failed']);
    // failed and final: nothing else is replaced, the extra slots go
    expect(g.decisions.at(-1)).toMatchObject({ extra: 0, replace: [] });
  });

  it('with a surge, a bad version fails on its extra task before any old task stops', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 1000 }), 6, { failMs: 800 });
    g.runUntilFinal();
    expect(g.d.status).toBe('failed');
    expect(g.d.message).toBe('p/web/6 unhealthy');
    expect(g.minHealthy).toBe(6);
    // the extra task is stopped: the group is as it was
    expect(g.specs()).toBe('0:old 1:old 2:old 3:old 4:old 5:old');
  });

  it('a new task that dies fails the deployment; without autoRevert there is nothing to revert', () => {
    const g = new FakeGroup(deployment({}), 2, { bootMs: 100_000 });
    g.tick();
    g.tasks.get(0)!.state = 'failed';
    g.tasks.get(0)!.error = 'exit code 1';
    const d = g.tick();
    expect(d.deployment).toMatchObject({ status: 'failed', message: 'p/web/0 failed: exit code 1' });
    expect(d.revert).toBe(false);
  });

  it('a new container its engine restarted in place (restarts grew) died: it fails the deployment though it runs again', () => {
    const g = new FakeGroup(deployment({ minHealthyTimeMs: 2000 }), 2, { bootMs: 0 });
    g.tick();
    const t = g.tasks.get(0)!;
    expect(t.specHash).toBe('new');
    g.tick();
    // Docker's restart policy started it again: running, a later start, one restart more
    t.startedAt = new Date(g.now).toISOString();
    t.restarts = 1;
    const d = g.tick();
    expect(d.deployment).toMatchObject({ status: 'failed', message: 'p/web/0 ended and was restarted in place by its runtime (restart #1)' });
    // a container already restarted when first seen (a failed deployment's, tried again): only a further restart counts
    const again = new FakeGroup(deployment({ minHealthyTimeMs: 500 }), 1, { bootMs: 0 });
    again.tasks.set(0, { task: 'p/web/0', index: 0, specHash: 'new', state: 'running', health: 'healthy', restarts: 4, startedAt: new Date(T0 + 50).toISOString() });
    again.runUntilFinal();
    expect(again.d).toMatchObject({ status: 'succeeded' });
  });

  it('a new start breaks the healthy streak: minHealthyTime counts from the restart', () => {
    const g = new FakeGroup(deployment({ minHealthyTimeMs: 1000, healthyDeadlineMs: 60_000 }), 1, { bootMs: 0 });
    g.tick();
    g.tick();
    g.tick();
    const rec = () => g.d.tasks.find((r) => r.task === 'p/web/0')!;
    expect(rec()).toMatchObject({ state: 'pending', healthySince: new Date(T0 + 100).toISOString() });
    // started again between two steps (never seen down): the streak so far does not count
    const restart = g.now;
    g.tasks.get(0)!.startedAt = new Date(restart).toISOString();
    for (let i = 0; i < 9; i++) g.tick();
    expect(rec().state).toBe('pending');
    g.runUntilFinal();
    expect(Date.parse(rec().healthyAt!) - restart).toBeGreaterThanOrEqual(1000);
  });

  it('a new task not healthy within healthyDeadline fails; so does a deployment without progress for progressDeadline', () => {
    const slow = new FakeGroup(deployment({ minHealthyTimeMs: 1000, healthyDeadlineMs: 5000 }), 2, { bootMs: 60_000 });
    slow.runUntilFinal();
    expect(slow.d).toMatchObject({ status: 'failed', message: 'p/web/0 not healthy for 1s within 5s of its start' });
    expect(slow.now - T0).toBeGreaterThan(5000);
    expect(slow.now - T0).toBeLessThan(5500);
    // unplaceable: the replaced task never starts (the fake scheduler drops it); the deployment fails by its progress deadline
    const stuck = new FakeGroup(deployment({ maxSurge: 1, progressDeadlineMs: 3000, healthyDeadlineMs: 2000, minHealthyTimeMs: 0 }), 2, { bootMs: 0 });
    stuck.start = () => undefined;
    stuck.runUntilFinal();
    expect(stuck.d).toMatchObject({ status: 'failed', message: 'no new task counted healthy for 3s (progressDeadline)' });
  });

  it('dead old tasks are replaced first, and cost no capacity', () => {
    const g = new FakeGroup(deployment({ maxParallel: 1, maxSurge: 1, minHealthyTimeMs: 0 }), 4, { bootMs: 1000 });
    g.tasks.get(3)!.state = 'exited';
    const first = g.tick();
    // one extra slot in flight already: maxParallel 1 leaves no room
    expect(first).toMatchObject({ extra: 1, replace: [] });
    const g2 = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 0, minHealthyTimeMs: 0 }), 4, { bootMs: 1000 });
    g2.tasks.get(2)!.state = 'exited';
    expect(g2.tick().replace).toEqual(['p/web/2', 'p/web/0']);
  });

  it('a revert: an old task above the count (the failed extra one) goes, it is not started again', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 0 }, { fromHash: 'new', toHash: 'old' }), 6, { bootMs: 0 });
    g.tasks.set(6, { task: 'p/web/6', index: 6, specHash: 'new', state: 'failed', health: 'unhealthy', error: 'unhealthy: 3 failed checks' });
    const first = g.tick();
    expect(first).toMatchObject({ extra: 0, replace: [] });
    expect(first.events.map((e) => e.kind)).not.toContain('deployment-task-failed');
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.specs()).toBe('0:old 1:old 2:old 3:old 4:old 5:old');
  });

  it('a revert whose kept tasks started long before it: they get minHealthyTime to count, not a healthyDeadline that ran out before the revert began', () => {
    // the 6 tasks on the spec reverted to started 60 s before the revert, beyond its 20 s healthyDeadline
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 1000, healthyDeadlineMs: 20_000 }, { fromHash: 'new', toHash: 'old' }), 6, { bootMs: 0 });
    g.tasks.set(6, { task: 'p/web/6', index: 6, specHash: 'new', state: 'failed', health: 'unhealthy', error: 'unhealthy: 3 failed checks' });
    g.runUntilFinal();
    expect(g.decisions.flatMap((x) => x.events.map((e) => e.kind))).not.toContain('deployment-task-failed');
    expect(g.d).toMatchObject({ status: 'succeeded' });
    expect(g.d.tasks.every((t) => t.state === 'healthy')).toBe(true);
    expect(g.now - T0).toBeGreaterThanOrEqual(1000);
    expect(g.specs()).toBe('0:old 1:old 2:old 3:old 4:old 5:old');
  });

  it('paused: what runs stays, nothing new starts', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 1 }), 6, { bootMs: 100 });
    g.tick();
    g.d = { ...g.d, status: 'paused' };
    for (let i = 0; i < 20; i++) expect(g.tick()).toMatchObject({ extra: 1, replace: [] });
    expect(g.specs()).toBe('0:old 1:old 2:old 3:old 4:old 5:old 6:new');
  });
});

describe('VMs', () => {
  it('a VM without a health check counts healthy while its power is running, not while it is paused', () => {
    const d = deployment({ maxParallel: 1, minHealthyTimeMs: 1000 }, { old: 1 });
    const at = (ms: number) => new Date(T0 + ms).toISOString();
    const vm = (power: string): GroupTask => ({ task: 'p/web/0', index: 0, specHash: 'new', state: 'running', power, startedAt: at(0) });
    const old: GroupTask = { task: 'p/web/1', index: 1, specHash: 'old', state: 'running', power: 'running', startedAt: at(-60_000) };
    let dec = step({ deployment: d, count: 2, hasHealthCheck: false, tasks: [vm('paused'), old], now: T0 });
    dec = step({ deployment: dec.deployment, count: 2, hasHealthCheck: false, tasks: [vm('paused'), old], now: T0 + 5000 });
    expect(dec.deployment.tasks).toMatchObject([{ task: 'p/web/0', state: 'pending' }]);
    expect(dec.deployment.tasks[0]!.healthySince).toBeUndefined();
    expect(dec.replace).toEqual([]);
    dec = step({ deployment: dec.deployment, count: 2, hasHealthCheck: false, tasks: [vm('running'), old], now: T0 + 6000 });
    dec = step({ deployment: dec.deployment, count: 2, hasHealthCheck: false, tasks: [vm('running'), old], now: T0 + 7000 });
    expect(dec.deployment.tasks).toMatchObject([{ task: 'p/web/0', state: 'healthy' }]);
    expect(dec.replace).toEqual(['p/web/1']);
  });
});

describe('canaries', () => {
  it('canary 1: one new task beside the 6 old, then waiting for promotion; promote rolls the rest', () => {
    const g = new FakeGroup(deployment({ canary: 1, minHealthyTimeMs: 500 }), 6, { bootMs: 200 });
    g.runUntilFinal();
    expect(g.d.status).toBe('waiting-promotion');
    expect(g.specs()).toBe('0:old 1:old 2:old 3:old 4:old 5:old 6:new');
    expect(g.d.tasks).toMatchObject([{ task: 'p/web/6', state: 'healthy', canary: true }]);
    // waiting: nothing moves, however long
    for (let i = 0; i < 50; i++) g.tick();
    expect(g.specs()).toBe('0:old 1:old 2:old 3:old 4:old 5:old 6:new');
    g.d = promote(g.d, g.now, 'local:me');
    expect(g.d).toMatchObject({ status: 'running', promoted: true, message: 'promoted by local:me' });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.specs()).toBe('0:new 1:new 2:new 3:new 4:new 5:new');
    // the canary slot carried capacity through the roll: never fewer than 6 healthy
    expect(g.minHealthy).toBe(6);
  });

  it('autoPromote promotes healthy canaries and goes on', () => {
    const g = new FakeGroup(deployment({ canary: 2, autoPromote: true, minHealthyTimeMs: 500 }), 3, { bootMs: 200 });
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
    expect(g.decisions.flatMap((d) => d.events.map((e) => e.kind))).toContain('deployment-promoted');
    expect(g.decisions.flatMap((d) => d.events.map((e) => e.kind))).not.toContain('deployment-waiting');
  });

  it('a canary that fails fails the deployment before any old task is touched', () => {
    const g = new FakeGroup(deployment({ canary: 1, autoRevert: true }), 3, { failMs: 300 });
    g.runUntilFinal();
    expect(g.d).toMatchObject({ status: 'failed', message: 'p/web/3 unhealthy' });
    expect(g.specs()).toBe('0:old 1:old 2:old');
  });
});

describe('resuming', () => {
  it('a step taken again after a lost control host sees the same tasks and decides the same', () => {
    const g = new FakeGroup(deployment({ maxParallel: 2, maxSurge: 1, minHealthyTimeMs: 1000 }), 6, { bootMs: 500 });
    for (let i = 0; i < 25; i++) g.tick();
    const view = { deployment: g.d, count: 6, hasHealthCheck: true, tasks: [...g.tasks.values()].map((t) => ({ ...t })), now: g.now };
    expect(step(view)).toEqual(step(structuredClone(view)));
    g.runUntilFinal();
    expect(g.d.status).toBe('succeeded');
  });
});
