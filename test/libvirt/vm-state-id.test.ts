/**
 * VMs of two factory states on one agent store, against a real libvirtd through the built executor:
 * the same task id becomes two domains (`…_<8 hex of the state id>`, state in the domain metadata
 * and vm.json), each session lists the other's VM with its state, stops only its own, and a VM action
 * on a VM only the other state runs is refused naming that state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TaskRunSpec } from '../../src/protocol/messages.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { LocalTransport } from '../../src/transport/local.js';
import { readVmImageSource, uploadVmImage } from '../../src/control/vm-images.js';
import { acquireLibvirtd, makeGuestImageSource, testWorkDir } from '../harness/libvirtd.js';

const lv = await acquireLibvirtd();
const work = testWorkDir('vm-state-id-');
const A = 'st-aaaaaaaaaaaa';
const B = 'st-bbbbbbbbbbbb';
let a: ExecutorClient;
let b: ExecutorClient;

function vmSpec(task: string): TaskRunSpec {
  const [plan = 'p', group = 'g'] = task.split('/');
  return {
    task,
    driver: 'libvirt',
    specHash: 'vm1',
    command: [],
    env: {},
    resources: { cpus: 1, mem: 128 * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] },
    labels: { plan, group, project: 'test' },
    stopGraceMs: 0,
    image: 'tiny',
  };
}

const connect = (stateId: string) =>
  ExecutorClient.connect(new LocalTransport('local'), { workDir: path.join(work.dir, 'agent'), timeoutMs: 30_000, stateId });

describe.skipIf(!lv.ok)(`libvirt driver with state ids${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    a = await connect(A);
    b = await connect(B);
    expect(a.registration.drivers).toContain('libvirt');
    await uploadVmImage(a, await readVmImageSource(makeGuestImageSource(path.join(work.dir, 'guest-src'))), 'tiny');
  }, 200_000);

  afterAll(async () => {
    for (const c of [a, b]) {
      if (!c) continue;
      for (const t of ['two/vm/0', 'solo/vm/0']) await c.stop(t, { graceMs: 0 }).catch(() => undefined);
      await c.close();
    }
    work.cleanup();
    if (lv.ok) await lv.release();
  }, 60_000);

  test('same task id in two states: two domains, each lists both with their state and stops only its own', async () => {
    const ra = await a.run(vmSpec('two/vm/0'));
    const rb = await b.run(vmSpec('two/vm/0'));
    expect(ra).toMatchObject({ state: 'running', stateId: A });
    expect(rb).toMatchObject({ state: 'running', stateId: B });
    expect(rb.pid).not.toBe(ra.pid);
    const vms = fs.readdirSync(path.join(work.dir, 'agent', 'vm', 'vms')).sort();
    expect(vms).toEqual(['two.vm.0_aaaaaaaa', 'two.vm.0_bbbbbbbb']);
    const rec = JSON.parse(fs.readFileSync(path.join(work.dir, 'agent', 'vm', 'vms', 'two.vm.0_bbbbbbbb', 'vm.json'), 'utf8')) as { state?: string; domain: string };
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
    expect(fs.readdirSync(path.join(work.dir, 'agent', 'vm', 'vms'))).toEqual(['two.vm.0_aaaaaaaa']);
  }, 200_000);

  test('a VM action on a VM only the other state runs fails with E_FOREIGN_TASK naming it', async () => {
    const ra = await a.run(vmSpec('solo/vm/0'));
    expect(ra.state).toBe('running');
    await expect(b.vmAction('solo/vm/0', 'force-off')).rejects.toMatchObject({ code: 'E_FOREIGN_TASK', message: expect.stringContaining(A) });
    expect((await a.inspect()).find((t) => t.task === 'solo/vm/0')).toMatchObject({ state: 'running', power: 'running' });
  }, 200_000);
});
