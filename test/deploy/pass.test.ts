/**
 * The deployments' part of a plan pass, over a state in memory: which applies start a deployment
 * (a changed spec, not a count), which supersede one, what supervision does with a failed one, the
 * revert (the plan's record gets the old spec back) and a destroyed plan.
 */
import { describe, expect, it } from 'vitest';
import { specHashOf, desiredGroupsOf } from '../../src/control/desired.js';
import { deploymentPass, type DeploymentPassInput } from '../../src/deploy/pass.js';
import { schedule } from '../../src/scheduler/schedule.js';
import type { ActualTask, AgentSnapshot } from '../../src/scheduler/types.js';
import type { GroupSpec, InventorySpec, PlanSpec } from '../../src/spec/model.js';
import { embeddedInventory } from '../../src/spec/index.js';
import { MemoryBackend } from '../../src/state/memory-backend.js';
import type { TaskRecord } from '../../src/state/types.js';
import { StateWork } from '../../src/state/work.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const inventory: InventorySpec = embeddedInventory();

function group(version: string, over: Partial<GroupSpec> = {}): GroupSpec {
  return {
    name: 'web', kind: 'process', driver: 'process', count: 3, everyAgent: false,
    resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], strategy: 'binpack',
    command: ['sleep', '60'], env: { V: version }, stopGraceMs: 1000, restart: 'always', line: 1, col: 1,
    update: { maxParallel: 1, minHealthyTimeMs: 0 }, ...over,
  };
}

const plan = (g: GroupSpec): PlanSpec => ({ file: 'p.yaml', name: 'p', project: 'default', groups: [g], warnings: [] });

/** World is a state in memory with plan p recorded at one version and its tasks running it. */
class World {
  readonly backend = new MemoryBackend();
  now = T0;

  async init(g: GroupSpec, count = g.count): Promise<void> {
    await this.backend.lock();
    const w = new StateWork(this.backend);
    w.plans.put({ name: 'p', project: 'default', file: 'p.yaml', appliedAt: 'then', spec: plan(g) });
    for (let i = 0; i < count; i++) w.tasks.put(this.task(i, specHashOf(plan(g), g)));
    await w.flush();
  }

  task(i: number, hash: string, over: Partial<TaskRecord> = {}): TaskRecord {
    return { task: `p/web/${i}`, plan: 'p', group: 'web', project: 'default', agent: 'local', driver: 'process', specHash: hash, state: 'running', resources: group('x').resources, startedAt: new Date(this.now).toISOString(), updatedAt: 'now', ...over };
  }

  /** pass runs the deployments' part of a pass of plans (an apply: start; supervision: no start) and commits it. */
  async pass(plans: PlanSpec[], opts: { mode?: DeploymentPassInput['mode']; start?: boolean } = {}) {
    const work = new StateWork(this.backend, 'local:test');
    const actual: ActualTask[] = work.tasks.values().map((t) => ({ task: t.task, plan: t.plan, group: t.group, project: t.project, agent: t.agent, driver: t.driver, specHash: t.specHash, state: t.state, resources: t.resources }));
    const mode = opts.mode ?? 'apply';
    const out = deploymentPass({ work, plans, inventory, groups: mode === 'destroy' ? [] : desiredGroupsOf(plans), actual, mode, start: opts.start ?? true, now: this.now, by: 'local:test' });
    await work.flush();
    return out;
  }

  deployments() {
    return this.backend.view().list('deployments').sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  events() {
    return this.backend.eventsSince(0).events.filter((e) => e.topic === 'deployment').map((e) => e.kind);
  }
}

describe('deploymentPass', () => {
  it('a changed spec starts a deployment that keeps the old spec to revert to; the first step replaces one task', async () => {
    const w = new World();
    const v1 = group('1');
    await w.init(v1);
    const v2 = group('2');
    const out = await w.pass([plan(v2)]);
    const [d] = w.deployments();
    expect(d).toMatchObject({ plan: 'p', group: 'web', status: 'running', fromHash: specHashOf(plan(v1), v1), toHash: specHashOf(plan(v2), v2), old: 3, by: 'local:test', promoted: true });
    expect(d!.fromSpec).toEqual(v1);
    expect(d!.id).toMatch(/^dep-[0-9a-f]{10}$/);
    expect(out.views).toMatchObject([{ id: d!.id, started: true, status: 'running', tasks: 3 }]);
    expect(w.events()).toEqual(['deployment-started']);
    // presented to the scheduler: task 0 replaced now (its real hash), 1 and 2 as if new already
    expect(out.shaped).toBe(true);
    expect(out.actual.map((t) => t.specHash === d!.toHash)).toEqual([false, true, true]);
    expect(out.groups[0]!.count).toBe(3);
  });

  it('a count-only change starts nothing; applying the spec being rolled again goes on with the same deployment', async () => {
    const w = new World();
    await w.init(group('1'));
    expect((await w.pass([plan(group('1', { count: 5 }))])).shaped).toBe(false);
    expect(w.deployments()).toEqual([]);
    await w.pass([plan(group('2'))]);
    w.now += 1000;
    await w.pass([plan(group('2', { count: 4 }))]);
    expect(w.deployments()).toHaveLength(1);
  });

  it('another spec while one rolls supersedes it: aborted, and the new one reverts (if it must) to the last good spec', async () => {
    const w = new World();
    const v1 = group('1');
    await w.init(v1);
    await w.pass([plan(group('2'))]);
    w.now += 1000;
    await w.pass([plan(group('3'))]);
    const [first, second] = w.deployments();
    expect(first).toMatchObject({ status: 'aborted' });
    expect(first!.message).toBe(`superseded by ${second!.id}`);
    expect(second).toMatchObject({ status: 'running' });
    expect(second!.fromSpec).toEqual(v1);
  });

  it('a diff says which deployment apply would start, and writes nothing', async () => {
    const w = new World();
    await w.init(group('1'));
    const out = await w.pass([plan(group('2'))], { mode: 'diff' });
    expect(out.views).toMatchObject([{ status: 'would start', started: true, old: 3, tasks: 3 }]);
    expect(out.views[0]!.id).toBeUndefined();
    expect(w.deployments()).toEqual([]);
  });

  it('supervision does not finish a failed rollout: its old tasks are kept, and it starts none of its own', async () => {
    const w = new World();
    const v2 = group('2');
    await w.init(group('1'));
    await w.pass([plan(v2)]);
    const [d] = w.deployments();
    const work = new StateWork(w.backend);
    work.deployments.put({ ...d!, status: 'failed', message: 'p/web/0 unhealthy' });
    work.tasks.put(w.task(0, d!.toHash, { state: 'failed', health: 'unhealthy', startedAt: new Date(T0 - 1000).toISOString() }));
    await work.flush();
    const out = await w.pass([plan(v2)], { start: false });
    expect(w.deployments()).toHaveLength(1);
    // the old tasks look up to date to the scheduler: kept; the failed new one is restarted as any dead task
    expect(out.actual.map((t) => [t.task, t.specHash === d!.toHash])).toEqual([['p/web/0', true], ['p/web/1', true], ['p/web/2', true]]);
    expect(out.groups[0]!.count).toBe(3);
    // an apply of the same plan tries again
    await w.pass([plan(v2)]);
    expect(w.deployments().map((x) => x.status)).toEqual(['failed', 'running']);
  });

  it('autoRevert: the plan record gets the old spec back and a second deployment rolls it back', async () => {
    const w = new World();
    const v1 = group('1');
    const v2 = group('2', { update: { maxParallel: 1, minHealthyTimeMs: 0, autoRevert: true } });
    await w.init(v1);
    await w.pass([plan(v2)]);
    const [d] = w.deployments();
    const work = new StateWork(w.backend);
    work.tasks.put(w.task(0, d!.toHash, { state: 'failed', error: 'exit code 1' }));
    await work.flush();
    const out = await w.pass([plan(v2)], { start: false });
    const [failed, revert] = w.deployments();
    expect(failed).toMatchObject({ status: 'reverted', revertedBy: revert!.id, message: 'p/web/0 failed: exit code 1' });
    expect(revert).toMatchObject({ status: 'running', revertOf: failed!.id, toHash: failed!.fromHash, fromHash: failed!.toHash });
    expect(revert!.policy.autoRevert).toBe(false);
    expect(w.backend.view().get('plans', 'p')!.spec!.groups[0]).toEqual(v1);
    expect(out.plans[0]!.groups[0]).toEqual(v1);
    expect(out.groups[0]!.specHash).toBe(failed!.fromHash);
    // minHealthyTime 0: the two tasks already on the old spec count at once
    expect(w.events()).toEqual(['deployment-started', 'deployment-task-failed', 'deployment-failed', 'deployment-reverted', 'deployment-started', 'deployment-task-healthy', 'deployment-task-healthy']);
  });

  it('a destroyed plan, or a group removed from it, ends its deployment', async () => {
    const w = new World();
    await w.init(group('1'));
    await w.pass([plan(group('2'))]);
    await w.pass([plan(group('2'))], { mode: 'destroy' });
    expect(w.deployments()).toMatchObject([{ status: 'aborted', message: 'the plan was destroyed' }]);
    const w2 = new World();
    await w2.init(group('1'));
    await w2.pass([plan(group('2'))]);
    await w2.pass([{ ...plan(group('2')), groups: [] }]);
    expect(w2.deployments()).toMatchObject([{ status: 'aborted', message: 'the group was removed from its plan' }]);
  });

  it('a VM group: a memory change rolls it; a running VM counts only once its check passes, and one still booting at healthyDeadline fails it', async () => {
    const w = new World();
    const vm = (memMi: number) => group('1', {
      kind: 'vm', driver: 'libvirt', count: 2, command: undefined, image: 'tiny', subnet: 'lab', env: {},
      resources: { cpus: 1, mem: memMi * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] },
      health: { tcp: true, port: 8080, intervalMs: 1000 },
      update: { maxParallel: 1, maxSurge: 0, minHealthyTimeMs: 1000, healthyDeadlineMs: 60_000, progressDeadlineMs: 0 },
    });
    await w.init(vm(128));
    const out = await w.pass([plan(vm(160))]);
    const [d] = w.deployments();
    expect(d).toMatchObject({ status: 'running', old: 2 });
    expect(out.actual.map((t) => t.specHash === d!.toHash)).toEqual([false, true]);
    const put = async (i: number, over: Partial<TaskRecord>) => {
      const work = new StateWork(w.backend);
      work.tasks.put(w.task(i, d!.toHash, { driver: 'libvirt', ...over }));
      await work.flush();
    };
    // VM 0 on the new spec: running (power on), its guest still booting
    await put(0, { state: 'running', health: 'starting', startedAt: new Date(w.now).toISOString() });
    w.now += 30_000;
    await w.pass([plan(vm(160))], { start: false });
    expect(w.deployments()[0]!.tasks).toMatchObject([{ task: 'p/web/0', state: 'pending' }]);
    // its check passes: healthy after minHealthyTime, and VM 1 is replaced next
    await put(0, { state: 'running', health: 'healthy', startedAt: new Date(w.now - 30_000).toISOString() });
    await w.pass([plan(vm(160))], { start: false });
    w.now += 1000;
    const next = await w.pass([plan(vm(160))], { start: false });
    expect(w.deployments()[0]!.tasks).toMatchObject([{ task: 'p/web/0', state: 'healthy' }]);
    expect(next.actual.map((t) => t.specHash === d!.toHash)).toEqual([true, false]);
    // VM 1 runs but its check never passes: failed at healthyDeadline, though it is running
    await put(1, { state: 'running', health: 'starting', startedAt: new Date(w.now).toISOString() });
    await w.pass([plan(vm(160))], { start: false });
    w.now += 61_000;
    await w.pass([plan(vm(160))], { start: false });
    expect(w.deployments()[0]).toMatchObject({ status: 'failed', message: 'p/web/1 not healthy for 1s within 1m of its start' });
  });

  it('a VM resource plan (total + shapes) whose spec changed (its image) rolls in batches by resources, through the scheduler, to a split kept as it is', async () => {
    const w = new World();
    const Mi = 1024 * 1024;
    const rp = (image: string) => group('1', {
      kind: 'vm', driver: 'libvirt', count: 0, command: undefined, image, env: {},
      total: { cpus: 4 }, shapes: [{ cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0 }],
    });
    const shape = (memMi: number) => ({ cpus: 2, mem: memMi * Mi, disk: 0, gpus: 0, scalars: {}, ports: [] });
    const put = async (i: number, hash: string, memMi: number) => {
      const work = new StateWork(w.backend);
      work.tasks.put(w.task(i, hash, { driver: 'libvirt', resources: shape(memMi), startedAt: new Date(w.now).toISOString() }));
      await work.flush();
    };
    await w.init(rp('tiny'), 0);
    const fromHash = specHashOf(plan(rp('tiny')), rp('tiny'));
    await put(0, fromHash, 128);
    await put(1, fromHash, 128);
    const agents: AgentSnapshot[] = [{ name: 'local', idc: 'i', cluster: 'c', state: 'ready', capacity: { cpus: 8, mem: 4096 * Mi, disk: 0, gpus: 0, scalars: {} }, attributes: {}, drivers: ['libvirt'] }];
    const scheduleOf = (out: Awaited<ReturnType<World['pass']>>) => schedule({ agents, groups: out.groups, actual: out.actual, plans: ['p'], seed: 1 });

    const out = await w.pass([plan(rp('tiny2'))]);
    const [d] = w.deployments();
    expect(d).toMatchObject({ status: 'running', old: 2, split: [{ cpus: 2, mem: 128 * Mi, index: 0 }, { cpus: 2, mem: 128 * Mi }], batchCpus: 2, surgeCpus: 0 });
    expect(w.events()).toEqual(['deployment-started']);
    expect(out.shaped).toBe(true);
    expect(out.groups[0]!.roll).toEqual({ stop: ['p/web/0'], start: [{ index: 0, shape: { cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0 } }] });
    // the scheduler replaces VM 0 in place at its new size and keeps VM 1
    const first = scheduleOf(out);
    expect(first.create.map((c) => [c.task, c.reason, c.resources.mem / Mi, c.specHash === d!.toHash])).toEqual([['p/web/0', 'update', 128, true]]);
    expect(first.stop.map((x) => [x.task.task, x.reason])).toEqual([['p/web/0', 'update']]);
    expect(first.keep.map((t) => t.task)).toEqual(['p/web/1']);

    // VM 0 runs the new spec: counted healthy (no check, minHealthyTime 0), then VM 1 is the next batch
    await put(0, d!.toHash, 128);
    w.now += 1000;
    const second = await w.pass([plan(rp('tiny2'))], { start: false });
    expect(second.groups[0]!.roll).toEqual({ stop: ['p/web/1'], start: [{ index: 1, shape: { cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0 } }] });
    await put(1, d!.toHash, 128);
    w.now += 1000;
    await w.pass([plan(rp('tiny2'))], { start: false });
    expect(w.deployments()[0]).toMatchObject({ status: 'succeeded', old: 0, split: [{ index: 0 }, { index: 1 }] });
    expect(w.events()).toEqual(['deployment-started', 'deployment-task-healthy', 'deployment-task-healthy', 'deployment-succeeded']);
    // done: the group is the scheduler's again, and the rolled split is kept as it is
    const after = await w.pass([plan(rp('tiny2'))]);
    expect(after.shaped).toBe(false);
    const kept = scheduleOf(after);
    expect([kept.create, kept.stop, kept.keep.map((t) => t.task)]).toEqual([[], [], ['p/web/0', 'p/web/1']]);
  });

  it('a resource plan whose first batch fails is rolled back by autoRevert: the failed VM goes first, the old VM left is kept in the split', async () => {
    const w = new World();
    const Mi = 1024 * 1024;
    const rp = (image: string, autoRevert = false) => group('1', {
      kind: 'vm', driver: 'libvirt', count: 0, command: undefined, image, env: {},
      total: { cpus: 4 }, shapes: [{ cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0 }], update: { maxParallel: 1, minHealthyTimeMs: 0, autoRevert },
    });
    const put = async (i: number, hash: string, over: Partial<TaskRecord> = {}) => {
      const work = new StateWork(w.backend);
      work.tasks.put(w.task(i, hash, { driver: 'libvirt', resources: { cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0, scalars: {}, ports: [] }, ...over }));
      await work.flush();
    };
    const v1 = rp('tiny');
    const v2 = rp('tiny2', true);
    await w.init(v1, 0);
    const fromHash = specHashOf(plan(v1), v1);
    await put(0, fromHash);
    await put(1, fromHash);
    await w.pass([plan(v2)]);
    const [d] = w.deployments();
    await put(0, d!.toHash, { state: 'failed', error: 'exit code 1' });
    w.now += 1000;
    const out = await w.pass([plan(v2)], { start: false });
    const [failed, revert] = w.deployments();
    expect(failed).toMatchObject({ status: 'reverted', revertedBy: revert!.id });
    expect(revert).toMatchObject({ status: 'running', toHash: fromHash, split: [{ cpus: 2, index: 1 }, { cpus: 2, index: 0 }] });
    expect(out.groups[0]).toMatchObject({ specHash: fromHash, total: { cpus: 4 } });
    expect(out.groups[0]!.roll).toEqual({ stop: ['p/web/0'], start: [{ index: 0, shape: { cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0 } }] });
    expect(w.backend.view().get('plans', 'p')!.spec!.groups[0]).toEqual(v1);
  });

  it('a roll the agents cannot hold: a new VM beside the old ones is unplaced with the reason; one replacing an old VM in place keeps the old one', () => {
    const Mi = 1024 * 1024;
    const [g] = desiredGroupsOf([plan(group('2', { kind: 'vm', driver: 'libvirt', count: 0, command: undefined, image: 'tiny', env: {}, total: { cpus: 4 }, shapes: [{ cpus: 4, mem: 128 * Mi, disk: 0, gpus: 0 }] }))]);
    const agents: AgentSnapshot[] = [{ name: 'local', idc: 'i', cluster: 'c', state: 'ready', capacity: { cpus: 5, mem: 4096 * Mi, disk: 0, gpus: 0, scalars: {} }, attributes: {}, drivers: ['libvirt'] }];
    const actual: ActualTask[] = [0, 1].map((i) => ({ task: `p/web/${i}`, plan: 'p', group: 'web', project: 'default', agent: 'local', driver: 'libvirt', specHash: 'old', state: 'running', resources: { cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0, scalars: {}, ports: [] } }));
    const shape = { cpus: 4, mem: 128 * Mi, disk: 0, gpus: 0 };
    // beside the old ones (surge): 1 cpu free, the VM asks 4
    const beside = schedule({ agents, groups: [{ ...g!, roll: { stop: [], start: [{ index: 2, shape }] } }], actual, plans: ['p'], seed: 1 });
    expect(beside.create).toEqual([]);
    expect(beside.keep.map((t) => t.task)).toEqual(['p/web/0', 'p/web/1']);
    expect(beside.unplaced).toMatchObject([{ task: 'p/web/2', reason: expect.stringContaining('cpus') }]);
    // in place of VM 0 (2 cpus freed, 3 free): still short, so VM 0 is not stopped
    const inPlace = schedule({ agents, groups: [{ ...g!, roll: { stop: ['p/web/0'], start: [{ index: 0, shape }] } }], actual, plans: ['p'], seed: 1 });
    expect([inPlace.create, inPlace.stop]).toEqual([[], []]);
    expect(inPlace.keep.map((t) => t.task).sort()).toEqual(['p/web/0', 'p/web/1']);
    expect(inPlace.unplaced).toMatchObject([{ task: 'p/web/0' }]);
    // both old VMs stop (maxSurge 0, a batch of 4 cpus): the new one fits in their place
    const batch = schedule({ agents, groups: [{ ...g!, roll: { stop: ['p/web/0', 'p/web/1'], start: [{ index: 0, shape }] } }], actual, plans: ['p'], seed: 1 });
    expect(batch.create.map((c) => [c.task, c.reason, c.resources.cpus])).toEqual([['p/web/0', 'update', 4]]);
    expect(batch.stop.map((x) => [x.task.task, x.reason]).sort()).toEqual([['p/web/0', 'update'], ['p/web/1', 'update']]);
    expect(batch.unplaced).toEqual([]);
  });

  it('a rolled split at other indices than 0…n−1 (new VMs started beside the old ones) is kept as it is', () => {
    const Mi = 1024 * 1024;
    const g = desiredGroupsOf([plan(group('1', { kind: 'vm', driver: 'libvirt', count: 0, command: undefined, image: 'tiny', env: {}, total: { cpus: 4 }, shapes: [{ cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0 }] }))]);
    const agents: AgentSnapshot[] = [{ name: 'local', idc: 'i', cluster: 'c', state: 'ready', capacity: { cpus: 8, mem: 4096 * Mi, disk: 0, gpus: 0, scalars: {} }, attributes: {}, drivers: ['libvirt'] }];
    const actual: ActualTask[] = [0, 3].map((i) => ({ task: `p/web/${i}`, plan: 'p', group: 'web', project: 'default', agent: 'local', driver: 'libvirt', specHash: g[0]!.specHash, state: 'running', resources: { cpus: 2, mem: 128 * Mi, disk: 0, gpus: 0, scalars: {}, ports: [] } }));
    const plan0 = schedule({ agents, groups: g, actual, plans: ['p'], seed: 1 });
    expect([plan0.create, plan0.stop, plan0.keep.map((t) => t.task)]).toEqual([[], [], ['p/web/0', 'p/web/3']]);
  });
});
