/**
 * A VM's health check without a daemon: the guest's link-local address from its NIC's MAC, the NIC read
 * back from a running domain's XML, and the prober's loop run for real against a stand-in QEMU (a
 * `sleep`) and a TCP or HTTP server on ::1 as the guest: starting while the guest boots (failures
 * before the first pass do not count), healthy, unhealthy after 3 failures in a row, and done when
 * QEMU ends; a command check's environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { linkLocalOf, nicOf, vmAddress, vmProberArgs } from '../../src/executors/drivers/libvirt/health.js';
import { readHealth } from '../../src/executors/drivers/process/health.js';
import { tempDir, waitFor } from './helpers.js';

const children: ChildProcess[] = [];
const servers: (net.Server | http.Server)[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const c of children.splice(0)) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function detached(cmd: string, args: string[], env: Record<string, string> = {}, cwd?: string): ChildProcess {
  const c = spawn(cmd, args, { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, ...(cwd ? { cwd } : {}) });
  children.push(c);
  return c;
}

function listen(port = 0): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer((c) => c.destroy());
    servers.push(s);
    s.listen(port, '::1', () => resolve(s));
  });
}

const RUNNING_XML = `<domain type='qemu' id='7'><name>fct-1-x</name><devices>
  <disk type='file' device='disk'><source file='/x/disk.qcow2'/></disk>
  <interface type='network'>
    <mac address='52:54:00:AB:cd:0e'/>
    <source network='fct-1-red' portid='9b1f' bridge='fv0123456789a'/>
    <target dev='vnet3'/>
    <model type='virtio'/>
  </interface>
</devices></domain>`;

describe('VM health checks (no daemon)', () => {
  it("linkLocalOf is the guest's EUI-64 link-local address: the MAC's universal/local bit flipped, ff:fe in the middle", () => {
    expect(linkLocalOf('52:54:00:12:34:56')).toBe('fe80::5054:ff:fe12:3456');
    expect(linkLocalOf('00:00:00:00:00:01')).toBe('fe80::200:ff:fe00:1');
    expect(() => linkLocalOf('52:54:00:12:34')).toThrow(/not a MAC address/);
  });

  it("nicOf reads the first NIC's MAC and bridge from a running domain's XML; vmAddress zones the address to the bridge", () => {
    const nic = nicOf(RUNNING_XML);
    expect(nic).toEqual({ mac: '52:54:00:ab:cd:0e', bridge: 'fv0123456789a' });
    expect(vmAddress(nic)).toBe('fe80::5054:ff:feab:cd0e%fv0123456789a');
    expect(nicOf('<domain><devices></devices></domain>')).toBeUndefined();
    expect(vmAddress(undefined)).toBe('');
  });

  it('tcp: starting while nothing answers (however long), healthy once the guest listens, unhealthy after 3 failures, and the prober ends with QEMU', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const qemu = detached('sleep', ['60']);
    const probe = await listen();
    const port = (probe.address() as net.AddressInfo).port;
    probe.close(); // a port nobody listens on yet: the guest still boots
    const prober = detached('/bin/sh', vmProberArgs(dir, qemu.pid!, { tcp: true, port, intervalMs: 100 }, '::1', process.execPath));
    // well past 3 failed checks: still starting, as a booting guest is
    await new Promise((r) => setTimeout(r, 1500));
    expect(readHealth(dir)).toEqual({ health: 'starting', fails: 0 });
    const guest = await listen(port);
    expect(await waitFor(() => readHealth(dir).health === 'healthy', 10_000, 50)).toBe(true);
    await new Promise<void>((r) => guest.close(() => r()));
    expect(await waitFor(() => readHealth(dir).health === 'unhealthy', 10_000, 50)).toBe(true);
    expect(readHealth(dir).fails).toBeGreaterThanOrEqual(3);
    process.kill(qemu.pid!, 'SIGKILL');
    expect(await waitFor(() => prober.exitCode !== null || prober.signalCode !== null, 5000, 50)).toBe(true);
  });

  it('http: a GET on [address]:port/path; 2xx is healthy, a 500 after that counts as a failure', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const qemu = detached('sleep', ['60']);
    let status = 200;
    const paths: string[] = [];
    const guest = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      res.statusCode = status;
      res.end();
    });
    servers.push(guest);
    await new Promise<void>((r) => guest.listen(0, '::1', () => r()));
    const port = (guest.address() as net.AddressInfo).port;
    detached('/bin/sh', vmProberArgs(dir, qemu.pid!, { http: '/healthz', port, intervalMs: 100 }, '::1', process.execPath));
    expect(await waitFor(() => readHealth(dir).health === 'healthy', 10_000, 50)).toBe(true);
    expect(paths[0]).toBe('/healthz');
    status = 500;
    expect(await waitFor(() => readHealth(dir).health === 'unhealthy', 10_000, 50)).toBe(true);
  });

  it('command: run on the host in the VM folder with FACTORY_VM_IP and the rest of its environment; exit 0 is healthy', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const qemu = detached('sleep', ['60']);
    const env = { FACTORY_VM_IP: 'fe80::5054:ff:fe12:3456%fvx', FACTORY_VM_DOMAIN: 'fct-1-x' };
    const check = ['sh', '-c', 'echo "$FACTORY_VM_IP $FACTORY_VM_DOMAIN $(pwd)" > seen'];
    detached('/bin/sh', vmProberArgs(dir, qemu.pid!, { command: check, intervalMs: 100 }, env.FACTORY_VM_IP, process.execPath), env, dir);
    expect(await waitFor(() => readHealth(dir).health === 'healthy', 10_000, 50)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'seen'), 'utf8').trim()).toBe(`${env.FACTORY_VM_IP} fct-1-x ${fs.realpathSync(dir)}`);
  });
});
