/**
 * The VM lifecycle against a real libvirtd with `type='qemu'` guests, through the built executor over
 * the local transport: push the tiny guest image, boot it (power running + the serial marker), ACPI
 * shutdown → shut off, image it, boot a second VM from that image (it sees the first VM's disk
 * stamp), reboot, force off, and delete (the disk goes too).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TaskRunSpec, TaskStatus } from '../../src/protocol/messages.js';
import type { ExecutorClient } from '../../src/transport/client.js';
import { uploadVmImage } from '../../src/control/vm-images.js';
import { consoleOf } from '../harness/libvirtd.js';
import { waitFor } from '../executors/helpers.js';
import { libvirtTestAgent, vmTaskSpec } from '../helpers/libvirt-agent.js';

const libvirt = await libvirtTestAgent('vm-lifecycle-');
const { lv } = libvirt;
let client: ExecutorClient;

function vmSpec(task: string, image: string): TaskRunSpec {
  return vmTaskSpec(task, { image, memMiB: 160, stopGraceMs: 20_000 });
}

async function statusOf(task: string): Promise<TaskStatus | undefined> {
  return (await client.inspect()).find((t) => t.task === task);
}

function consoleFile(task: string): string {
  return path.join(libvirt.agentDir, 'vm', 'vms', task.replace(/\//g, '.'), 'console.log');
}

describe.skipIf(!lv.ok)(`libvirt driver: boot, ACPI shutdown, image, second VM${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    client = await libvirt.connect({ heartbeatMs: 1000 });
    expect(client.registration.drivers).toContain('libvirt');
    const src = await libvirt.guestImage();
    const first = await uploadVmImage(client, src, 'tiny');
    expect(first.sent).toBe(true);
    // content-addressed: the same content again is skipped, only the name is set
    const again = await uploadVmImage(client, src, 'tiny-again');
    expect(again).toEqual({ sent: false, bytes: 0 });
  }, 200_000);

  afterAll(() => libvirt.stop([client], ['vmt/a/0', 'vmt/b/0']), 60_000);

  test('a VM boots from the pushed image: power running, serial marker on its console', async () => {
    const st = await client.run(vmSpec('vmt/a/0', 'tiny'));
    expect(st).toMatchObject({ task: 'vmt/a/0', driver: 'libvirt', state: 'running', power: 'running' });
    expect(st.pid).toBeGreaterThan(0);
    await waitFor(() => consoleOf(consoleFile('vmt/a/0')).includes('FACTORY-GUEST-READY'), 150_000, 250);
    expect(consoleOf(consoleFile('vmt/a/0'))).toContain('FACTORY-GUEST-DISK: blank');
    // run again with the same spec: adopted, not recreated
    const again = await client.run(vmSpec('vmt/a/0', 'tiny'));
    expect(again.pid).toBe(st.pid);
    const hb = await new Promise<TaskStatus | undefined>((resolve) => {
      const off = client.onHeartbeat((h) => {
        off();
        resolve(h.tasks.find((t) => t.task === 'vmt/a/0'));
      });
    });
    expect(hb?.power).toBe('running');
  }, 200_000);

  test('stop shuts it down over ACPI (the guest saw the power button) and keeps it', async () => {
    const r = await client.vmAction('vmt/a/0', 'stop', { timeoutMs: 60_000 });
    expect(r.power).toBe('shut off');
    expect(consoleOf(consoleFile('vmt/a/0'))).toContain('FACTORY-GUEST-POWER-BUTTON');
    expect(await statusOf('vmt/a/0')).toMatchObject({ state: 'stopped', power: 'shut off' });
  }, 90_000);

  test('image turns the shut off disk into a new base image; a running VM is refused', async () => {
    const r = await client.vmAction('vmt/a/0', 'image', { imageName: 'tiny-stamped' });
    expect(r.image?.name).toBe('tiny-stamped');
    expect(r.image?.id).toMatch(/^[0-9a-f]{64}$/);
    const imgs = await client.vmImages();
    const made = imgs.find((i) => i.names.includes('tiny-stamped'));
    expect(made?.manifest.parent).toBe(imgs.find((i) => i.names.includes('tiny'))?.id);
    expect(made?.manifest.files.kernel).toBeDefined();
    await client.vmAction('vmt/a/0', 'start');
    expect(await statusOf('vmt/a/0')).toMatchObject({ state: 'running', power: 'running' });
    await expect(client.vmAction('vmt/a/0', 'image', { imageName: 'nope' })).rejects.toThrow(/only a shut off VM can be imaged/);
  }, 90_000);

  test('a second VM boots from the new image and sees the first VM\'s disk', async () => {
    const st = await client.run(vmSpec('vmt/b/0', 'tiny-stamped'));
    expect(st).toMatchObject({ state: 'running', power: 'running' });
    await waitFor(() => consoleOf(consoleFile('vmt/b/0')).includes('FACTORY-GUEST-READY'), 150_000, 250);
    expect(consoleOf(consoleFile('vmt/b/0'))).toContain('FACTORY-GUEST-DISK: factory-disk-stamp');
  }, 200_000);

  test('reboot restarts the guest; a paused VM is reported and resumed; force-off stops it at once', async () => {
    const before = consoleOf(consoleFile('vmt/b/0')).split('FACTORY-GUEST-READY').length - 1;
    await client.vmAction('vmt/b/0', 'reboot');
    await waitFor(() => consoleOf(consoleFile('vmt/b/0')).split('FACTORY-GUEST-READY').length - 1 > before, 150_000, 250);
    expect((await statusOf('vmt/b/0'))?.power).toBe('running');
    // paused by hand (virsh suspend): reported as paused; vm start resumes it
    const domain = (JSON.parse(fs.readFileSync(path.join(path.dirname(consoleFile('vmt/b/0')), 'vm.json'), 'utf8')) as { domain: string }).domain;
    execFileSync('virsh', ['-c', 'qemu:///system', 'suspend', domain], { stdio: 'ignore' });
    expect(await statusOf('vmt/b/0')).toMatchObject({ state: 'running', power: 'paused' });
    expect((await client.vmAction('vmt/b/0', 'start')).power).toBe('running');
    const r = await client.vmAction('vmt/b/0', 'force-off');
    expect(r.power).toBe('shut off');
  }, 200_000);

  test('logs streams the serial console', async () => {
    let out = '';
    await client.logs('vmt/b/0', { tail: 50 }, (_s, d) => (out += d));
    expect(out).toContain('FACTORY-GUEST-READY');
  });

  test('delete removes the domain and its disk', async () => {
    const dir = path.dirname(consoleFile('vmt/a/0'));
    expect(fs.existsSync(path.join(dir, 'disk.qcow2'))).toBe(true);
    const st = await client.stop('vmt/a/0', { graceMs: 20_000 });
    expect(st.state).toBe('stopped');
    expect(fs.existsSync(dir)).toBe(false);
    expect(await statusOf('vmt/a/0')).toBeUndefined();
    // base images stay in the store
    expect((await client.vmImages()).length).toBe(2);
  }, 60_000);
});
