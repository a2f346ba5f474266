/**
 * Deployments of a VM resource plan (total + shapes) against a real libvirtd (issue 14), with the
 * built CLI and a one-shot `plan apply`, set up as test/libvirt/vm-deploy.test.ts: health is a TCP
 * check on the guest, image `good` answers it, image `bad` does not.
 *
 * - a first apply splits 0.5 cpus into 2 VMs of 0.25 and boots them;
 * - an env change rolls them in batches of one old VM's cpus (maxParallel 1, maxSurge 0): the old VM
 *   stops first, its new one starts at its index, the next batch only once it counted healthy; never
 *   fewer than 1 healthy VM (total − one batch), both VMs on the new spec and the new split at the end;
 * - an image that fails its check fails on the first batch, the other VM is untouched, and autoRevert
 *   brings the group back on the last good spec.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VM_ROLL, VmDeployFixture } from '../helpers/vm-deploy.js';
import { acquireLibvirtd, testWorkDir } from '../harness/libvirtd.js';
import { waitFor } from '../executors/helpers.js';

const lv = await acquireLibvirtd();
// a folder QEMU can reach: the local agent's VM store is under the state
const work = testWorkDir('vm-rplan-deploy-');
const fx = new VmDeployFixture(work.dir, 'vmsplit');

/** planText is the plan: 0.5 cpus of VMs of 0.25 cpus and 128 MiB of `image`, health-checked on TCP 8080. */
function planText(image: string, version: string, update: string): string {
  return `name: vmsplit
project: e2e
vms:
  - name: web
    image: ${image}
    total: {cpus: 0.5}
    shapes: [{cpus: 0.25, mem: 128Mi}]
    subnet: split
    stopGrace: 1s
    env: {V: "${version}"}
    health: {tcp: true, port: 8080, interval: 1s}
    update: {${update}}
`;
}

describe.skipIf(!lv.ok)(`deployments of a VM resource plan, rolled by resources${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    await fx.pushImages();
  }, 200_000);

  afterAll(async () => {
    await fx.cli(['plan', 'destroy', fx.plan]).catch(() => undefined);
    work.cleanup();
    if (lv.ok) await lv.release();
  }, 200_000);

  test('a first apply splits 0.5 cpus into 2 VMs of 0.25 and boots them', async () => {
    const r = await fx.apply(planText('good', '1', VM_ROLL));
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc.deployments).toBeUndefined();
    expect(await waitFor(async () => (await fx.tasks()).filter((t) => t.health === 'healthy').length === 2, 120_000, 1000)).toBe(true);
    expect((await fx.tasks()).map((t) => t.task).sort()).toEqual(['vmsplit/web/0', 'vmsplit/web/1']);
  }, 180_000);

  test("an env change rolls the split by one old VM's worth of cpus at a time, health-gated; never fewer than 1 healthy", async () => {
    const s = fx.sampling();
    const t0 = Date.now();
    const r = await fx.apply(planText('good', '2', VM_ROLL));
    const samples = s.stop();
    expect(r.code, r.stderr).toBe(0);
    const [d] = r.doc.deployments;
    expect(d).toMatchObject({ plan: 'vmsplit', group: 'web', status: 'succeeded', started: true, old: 0, healthy: 2, tasks: 2 });
    const minHealthy = Math.min(...samples.map((x) => x.healthy));
    console.log(`resource plan roll: ${Date.now() - t0} ms, ${samples.length} samples, healthy min ${minHealthy}`);
    expect(minHealthy).toBeGreaterThanOrEqual(1);
    const st = await fx.cli(['deploy', 'status', d.id, '--json']);
    expect(st.code, st.stderr).toBe(0);
    const rec = (JSON.parse(st.stdout) as { deployment: { split: { cpus: number; index: number }[]; batchCpus: number; tasks: { task: string; state: string; startedAt: string; healthyAt?: string }[] } }).deployment;
    expect(rec.split.map((v) => [v.cpus, v.index])).toEqual([[0.25, 0], [0.25, 1]]);
    expect(rec.batchCpus).toBe(0.25);
    const [a, b] = ['vmsplit/web/0', 'vmsplit/web/1'].map((t) => rec.tasks.find((x) => x.task === t)!);
    expect(a).toMatchObject({ state: 'healthy' });
    expect(b).toMatchObject({ state: 'healthy' });
    // a batch of one old VM's cpus: the second new VM started only once the first counted healthy
    expect(Date.parse(b!.startedAt)).toBeGreaterThanOrEqual(Date.parse(a!.healthyAt!));
    expect((await fx.tasks()).map((t) => t.task).sort()).toEqual(['vmsplit/web/0', 'vmsplit/web/1']);
    // the rolled split is kept as it is by the next apply
    const again = await fx.apply(planText('good', '2', VM_ROLL));
    expect(again.code, again.stderr).toBe(0);
    expect(again.doc.deployments).toBeUndefined();
    expect(again.doc.changes).toEqual({ create: 0, destroy: 0, update: 0 });
  }, 240_000);

  test('an image that fails its check fails on the first batch; the other VM is untouched; autoRevert brings the group back', async () => {
    const before = fx.vmRecord('vmsplit/web/1');
    const s = fx.sampling();
    const r = await fx.apply(planText('bad', '2', 'maxParallel: 1, maxSurge: 0, minHealthyTime: 1s, healthyDeadline: 20s, progressDeadline: 0s, autoRevert: true'));
    const samples = s.stop();
    expect(r.code).toBe(1);
    const [d] = r.doc.deployments;
    expect(d.status).toBe('reverted');
    expect(d.message).toBe('vmsplit/web/0 not healthy for 1s within 20s of its start');
    expect(Math.min(...samples.map((x) => x.healthy))).toBeGreaterThanOrEqual(1);
    expect(fx.vmRecord('vmsplit/web/1')).toEqual(before);
    expect(await waitFor(async () => (await fx.tasks()).length === 2 && (await fx.tasks()).every((t) => t.health === 'healthy'), 60_000, 1000)).toBe(true);
  }, 240_000);
});
