/**
 * Subnets and shared volumes against a real libvirtd: each subnet named by VMs is its own isolated
 * libvirt network (no forward, no IP, own bridge) and every VM's NIC joins its subnet's; a named
 * volume is created once and attached (shareable) to every VM that lists it. Deleting the last VM of
 * a subnet removes its network; volumes stay.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TaskRunSpec } from '../../src/protocol/messages.js';
import type { ExecutorClient } from '../../src/transport/client.js';
import { uploadVmImage } from '../../src/control/vm-images.js';
import { libvirtTestAgent, vmTaskSpec } from '../helpers/libvirt-agent.js';

const libvirt = await libvirtTestAgent('vm-net-');
const { lv } = libvirt;
let client: ExecutorClient;
const virsh = (...args: string[]) => execFileSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8' });

function vmSpec(task: string, vm: TaskRunSpec['vm']): TaskRunSpec {
  return vmTaskSpec(task, { specHash: 'net1', vm });
}

function domainOf(task: string): string {
  const rec = JSON.parse(fs.readFileSync(path.join(libvirt.agentDir, 'vm', 'vms', task.replace(/\//g, '.'), 'vm.json'), 'utf8')) as { domain: string };
  return rec.domain;
}

let prefix = '';
/** netName is this store's network of a subnet: `fct-<store hash>-<subnet>`, like its domains. */
const netName = (subnet: string) => `${prefix}${subnet}`;
const netList = () => virsh('net-list', '--all', '--name').split('\n').map((l) => l.trim());

describe.skipIf(!lv.ok)(`libvirt subnets and shared volumes${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    client = await libvirt.connect();
    await uploadVmImage(client, await libvirt.guestImage(), 'tiny');
  }, 200_000);

  afterAll(() => libvirt.stop([client], ['net/a/0', 'net/a/1', 'net/b/0']), 60_000);

  test('two subnets are two isolated networks; each NIC is on its own subnet', async () => {
    for (const [task, subnet] of [['net/a/0', 'red'], ['net/a/1', 'red'], ['net/b/0', 'blue']] as const) {
      const st = await client.run(vmSpec(task, { subnet, volumes: ['shared'] }));
      expect(st, st.error).toMatchObject({ state: 'running', power: 'running' });
    }
    prefix = /^fct-[0-9a-f]{8}-/.exec(domainOf('net/a/0'))![0];
    const nets = virsh('net-list', '--name').split('\n').map((l) => l.trim()).filter(Boolean);
    // this store's names: other runs of the suite may share the daemon
    const red = nets.find((n) => n === netName('red'));
    const blue = nets.find((n) => n === netName('blue'));
    expect(red).toBeDefined();
    expect(blue).toBeDefined();
    for (const net of [red!, blue!]) {
      const xml = virsh('net-dumpxml', net);
      expect(xml).not.toMatch(/<forward/); // isolated: no NAT, no routing, no bridge to the host's LAN
      expect(xml).not.toMatch(/<ip\b/); // no address on the host side: VMs reach only each other
    }
    const bridgeOf = (net: string) => /<bridge name='([^']+)'/.exec(virsh('net-dumpxml', net))![1];
    expect(bridgeOf(red!)).not.toBe(bridgeOf(blue!));
    const nicNet = (task: string) => /<source network='([^']+)'/.exec(virsh('dumpxml', domainOf(task)))?.[1];
    expect(nicNet('net/a/0')).toBe(red);
    expect(nicNet('net/a/1')).toBe(red);
    expect(nicNet('net/b/0')).toBe(blue);
  }, 200_000);

  test('a shared volume is created once and attached shareable to every VM that lists it', () => {
    const vol = path.join(libvirt.agentDir, 'vm', 'volumes', 'shared.raw');
    expect(fs.existsSync(vol)).toBe(true);
    for (const t of ['net/a/0', 'net/a/1', 'net/b/0']) {
      const xml = virsh('dumpxml', domainOf(t));
      const disk = xml.match(/<disk[\s\S]*?<\/disk>/g)!.find((d) => d.includes(vol));
      expect(disk, `${t} has the volume`).toBeDefined();
      expect(disk).toMatch(/<shareable\/>/);
    }
    expect(fs.readdirSync(path.dirname(vol))).toEqual(['shared.raw']);
  });

  test('deleting the last VM of a subnet removes its network; the volume stays', async () => {
    await client.stop('net/b/0', { graceMs: 0 });
    const nets = netList();
    expect(nets).not.toContain(netName('blue'));
    expect(nets).toContain(netName('red'));
    expect(fs.existsSync(path.join(libvirt.agentDir, 'vm', 'volumes', 'shared.raw'))).toBe(true);
    await client.stop('net/a/0', { graceMs: 0 });
    await client.stop('net/a/1', { graceMs: 0 });
    expect(netList()).not.toContain(netName('red'));
  }, 60_000);
});
