/**
 * Deployments of a VM group against a real libvirtd (issue 14), with the built CLI and a one-shot
 * `plan apply` (it carries its deployments out itself). Health is the group's TCP check on the guest's
 * link-local address: image `good` boots the test guest with `factory.listen=8080`, image `bad` boots
 * it without (nothing answers). A second group has a command check run on the agent host with
 * FACTORY_VM_IP and the group's env.
 *
 * - a first apply boots the VMs; each counts healthy once its check passes (status shows it);
 * - a memory change rolls the 2 VMs one at a time (maxParallel 1, maxSurge 0): VM 1 is replaced only
 *   after VM 0 counted healthy, never fewer than 1 healthy VM (sampled from the VMs' health files);
 * - an image that fails its check fails the deployment on the first batch, the other VM is untouched,
 *   and autoRevert brings the first one back on the last good spec.
 *
 * Sampling reads the agent's VM store: each VM folder's `health` file, as the prober writes it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VM_ROLL, VmDeployFixture } from '../helpers/vm-deploy.js';
import { acquireLibvirtd, testWorkDir } from '../harness/libvirtd.js';
import { waitFor } from '../executors/helpers.js';

const lv = await acquireLibvirtd();
// a folder QEMU can reach: the local agent's VM store is under the state
const work = testWorkDir('vm-deploy-');
const fx = new VmDeployFixture(work.dir, 'vmroll');
const seen = path.join(work.dir, 'probe-seen');
const virsh = (...args: string[]) => execFileSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8' });

const CONNECT = "require('net').connect({ host: process.env.FACTORY_VM_IP, port: Number(process.env.CHECK_PORT) }, () => process.exit(0)).on('error', () => process.exit(1))";

/** planText is the plan: 2 VMs of `image` with `memMi`, health-checked on TCP 8080; with probe, a third VM checked by a command on the host. */
function planText(image: string, memMi: number, update: string, probe = false): string {
  const web = `  - name: web
    image: ${image}
    count: 2
    resources: {cpus: 0.25, mem: ${memMi}Mi}
    subnet: roll
    stopGrace: 1s
    health: {tcp: true, port: 8080, interval: 1s}
    update: {${update}}
`;
  const check = JSON.stringify(['sh', '-c', `echo "$FACTORY_VM_IP $CHECK_PORT" > ${seen} && exec ${process.execPath} -e "${CONNECT}"`]);
  const probeGroup = `  - name: probe
    image: good
    count: 1
    resources: {cpus: 0.25, mem: 128Mi}
    subnet: roll
    stopGrace: 1s
    env: {CHECK_PORT: "8080"}
    health: {command: ${check}, interval: 1s}
`;
  return `name: vmroll\nproject: e2e\nvms:\n${web}${probe ? probeGroup : ''}`;
}

function memKiB(task: string): number {
  return Number(/Max memory:\s+(\d+) KiB/.exec(virsh('dominfo', fx.vmRecord(task).domain))![1]);
}

describe.skipIf(!lv.ok)(`deployments of a VM group, health-checked over TCP${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    await fx.pushImages();
  }, 200_000);

  afterAll(async () => {
    await fx.cli(['plan', 'destroy', fx.plan]).catch(() => undefined);
    work.cleanup();
    if (lv.ok) await lv.release();
  }, 200_000);

  test('a first apply boots the VMs; the tcp check and the host-side command check (FACTORY_VM_IP) count them healthy', async () => {
    const t0 = Date.now();
    const r = await fx.apply(planText('good', 128, VM_ROLL, true));
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc.deployments).toBeUndefined();
    expect(await waitFor(async () => (await fx.tasks()).filter((t) => t.health === 'healthy').length === 3, 120_000, 1000)).toBe(true);
    console.log(`3 VMs booted and healthy in ${Date.now() - t0} ms`);
    for (const t of await fx.tasks()) expect(t).toMatchObject({ state: 'running', power: 'running', health: 'healthy' });
    // the command ran on the host with the guest's link-local address, zoned to the subnet's bridge, and the group's env
    expect(fs.readFileSync(seen, 'utf8').trim()).toMatch(/^fe80::5054:ff:fe[0-9a-f]{2}:[0-9a-f]{1,4}%fv[0-9a-f]{11} 8080$/);
  }, 180_000);

  test('a memory change rolls the 2 VMs one at a time, each health-gated; never fewer than 1 healthy', async () => {
    const s = fx.sampling();
    const t0 = Date.now();
    const r = await fx.apply(planText('good', 160, VM_ROLL));
    const samples = s.stop();
    expect(r.code, r.stderr).toBe(0);
    const [d] = r.doc.deployments;
    expect(d).toMatchObject({ plan: 'vmroll', group: 'web', status: 'succeeded', started: true, old: 0, healthy: 2 });
    const minHealthy = Math.min(...samples.map((x) => x.healthy));
    console.log(`memory roll: ${Date.now() - t0} ms, ${samples.length} samples, healthy min ${minHealthy}`);
    expect(minHealthy).toBeGreaterThanOrEqual(1);
    const st = await fx.cli(['deploy', 'status', d.id, '--json']);
    expect(st.code, st.stderr).toBe(0);
    const rec = (JSON.parse(st.stdout) as { deployment: { tasks: { task: string; state: string; startedAt: string; healthyAt?: string }[] } }).deployment;
    const [t0rec, t1rec] = ['vmroll/web/0', 'vmroll/web/1'].map((t) => rec.tasks.find((x) => x.task === t)!);
    expect(t0rec).toMatchObject({ state: 'healthy' });
    expect(t1rec).toMatchObject({ state: 'healthy' });
    // a batch of 1: the second VM started only once the first counted healthy
    expect(Date.parse(t1rec!.startedAt)).toBeGreaterThanOrEqual(Date.parse(t0rec!.healthyAt!));
    for (const t of ['vmroll/web/0', 'vmroll/web/1']) expect(memKiB(t)).toBe(160 * 1024);
    expect((await fx.tasks()).map((t) => t.task).sort()).toEqual(['vmroll/web/0', 'vmroll/web/1']);
  }, 180_000);

  test('an image that fails its check fails on the first batch; the other VM is untouched; autoRevert brings the first back', async () => {
    const before = { 0: fx.vmRecord('vmroll/web/0'), 1: fx.vmRecord('vmroll/web/1') };
    const s = fx.sampling();
    const r = await fx.apply(planText('bad', 160, 'maxParallel: 1, maxSurge: 0, minHealthyTime: 1s, healthyDeadline: 20s, progressDeadline: 0s, autoRevert: true'));
    const samples = s.stop();
    expect(r.code).toBe(1);
    const [d] = r.doc.deployments;
    expect(d.status).toBe('reverted');
    expect(d.message).toBe('vmroll/web/0 not healthy for 1s within 20s of its start');
    expect(Math.min(...samples.map((x) => x.healthy))).toBeGreaterThanOrEqual(1);
    // VM 1 kept its QEMU through it all; VM 0 was replaced twice (bad, then back on the good image)
    expect(fx.vmRecord('vmroll/web/1')).toEqual(before[1]);
    expect(fx.vmRecord('vmroll/web/0').image).toBe(before[0].image);
    expect(fx.vmRecord('vmroll/web/0').startedAt).not.toBe(before[0].startedAt);
    expect(memKiB('vmroll/web/0')).toBe(160 * 1024);
    expect(await waitFor(async () => (await fx.tasks()).every((t) => t.health === 'healthy'), 60_000, 1000)).toBe(true);
  }, 180_000);
});
