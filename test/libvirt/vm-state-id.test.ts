/**
 * VMs of two factory states on one agent store, against a real libvirtd through the built executor:
 * the same task id becomes two domains (`…_<8 hex of the state id>`, state in the domain metadata
 * and vm.json), each session lists the other's VM with its state, stops only its own, and a VM action
 * on a VM only the other state runs is refused naming that state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExecutorClient } from '../../src/transport/client.js';
import { uploadVmImage } from '../../src/control/vm-images.js';
import { libvirtTestAgent, vmTaskSpec as vmSpec } from '../helpers/libvirt-agent.js';

const libvirt = await libvirtTestAgent('vm-state-id-');
const { lv } = libvirt;
const A = 'st-aaaaaaaaaaaa';
const B = 'st-bbbbbbbbbbbb';
let a: ExecutorClient;
let b: ExecutorClient;

const connect = (stateId: string) => libvirt.connect({ stateId });

describe.skipIf(!lv.ok)(`libvirt driver with state ids${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    a = await connect(A);
    b = await connect(B);
    expect(a.registration.drivers).toContain('libvirt');
    await uploadVmImage(a, await libvirt.guestImage(), 'tiny');
  }, 200_000);

  afterAll(() => libvirt.stop([a, b], ['two/vm/0', 'solo/vm/0']), 60_000);

  test('same task id in two states: two domains, each lists both with their state and stops only its own', async () => {
    const ra = await a.run(vmSpec('two/vm/0'));
    const rb = await b.run(vmSpec('two/vm/0'));
    expect(ra).toMatchObject({ state: 'running', stateId: A });
    expect(rb).toMatchObject({ state: 'running', stateId: B });
    expect(rb.pid).not.toBe(ra.pid);
    const vms = fs.readdirSync(path.join(libvirt.agentDir, 'vm', 'vms')).sort();
    expect(vms).toEqual(['two.vm.0_aaaaaaaa', 'two.vm.0_bbbbbbbb']);
    const rec = JSON.parse(fs.readFileSync(path.join(libvirt.agentDir, 'vm', 'vms', 'two.vm.0_bbbbbbbb', 'vm.json'), 'utf8')) as { state?: string; domain: string };
    expect(rec.state).toBe(B);
    expect(rec.domain).toMatch(/^fct-[0-9a-f]{8}-two\.vm\.0_bbbbbbbb$/);

    for (const c of [a, b]) {
      const list = (await c.inspect()).filter((t) => t.task === 'two/vm/0');
      expect(list.map((t) => [t.stateId, t.pid]).sort()).toEqual([[A, ra.pid], [B, rb.pid]].sort());
    }
    const st = await b.stop('two/vm/0', { graceMs: 0 });
    expect(st.state).toBe('stopped');
    const left = (await a.inspect()).filter((t) => t.task === 'two/vm/0');
    expect(left).toEqual([expect.objectContaining({ stateId: A, state: 'running', pid: ra.pid })]);
    expect(fs.readdirSync(path.join(libvirt.agentDir, 'vm', 'vms'))).toEqual(['two.vm.0_aaaaaaaa']);
  }, 200_000);

  test('a VM action on a VM only the other state runs fails with E_FOREIGN_TASK naming it', async () => {
    const ra = await a.run(vmSpec('solo/vm/0'));
    expect(ra.state).toBe('running');
    await expect(b.vmAction('solo/vm/0', 'force-off')).rejects.toMatchObject({ code: 'E_FOREIGN_TASK', message: expect.stringContaining(A) });
    expect((await a.inspect()).find((t) => t.task === 'solo/vm/0')).toMatchObject({ state: 'running', power: 'running' });
  }, 200_000);
});
