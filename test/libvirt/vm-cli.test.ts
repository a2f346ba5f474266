/**
 * The operator's VM loop with the built CLI against a real libvirtd: `vm push` the tiny guest (a
 * second push is skipped), `plan apply` a plan with a vm group on the local agent, `status --json`
 * shows power, `vm stop` / `vm start`, `vm image` refuses a running VM, `plan destroy` leaves no
 * domain, disk or network behind.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, scratchDir } from '../helpers/cli.js';
import { acquireLibvirtd, consoleOf, makeGuestImageSource } from '../harness/libvirtd.js';
import { waitFor } from '../executors/helpers.js';

const lv = await acquireLibvirtd();
// a 0700 temp folder, like a real state dir: the driver must put the VM store where QEMU can read it
const scratch = scratchDir('factory-vm-e2e-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'vme2e.yaml');
const virsh = (...args: string[]) => execFileSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8' });

const PLAN = `name: vme2e
project: e2e
vms:
  - name: tiny
    image: tiny
    count: 1
    resources: {cpus: 1, mem: 160Mi}
    subnet: lab
    volumes: [scratch]
    stopGrace: 10s
`;

function storeDir(): string {
  return fs.realpathSync(path.join(state, 'agents', 'local', 'vm-store'));
}

async function cli(args: string[], timeoutMs = 120_000) {
  return runCli([...args, '--state', state], { cwd: scratch.dir, timeoutMs });
}

interface TaskJson {
  task: string;
  driver: string;
  state: string;
  power?: string;
  pid?: number;
}

/** vmDirName is the VM's folder (and domain suffix) in the store: its task dir plus `_<8 hex of the state id>`. */
async function vmDirName(): Promise<string> {
  const r = await cli(['status', '--json', '--cached']);
  expect(r.code, r.stderr).toBe(0);
  const id = (JSON.parse(r.stdout) as { stateId: string }).stateId;
  expect(id).toMatch(/^st-[0-9a-f]{12}$/);
  return `vme2e.tiny.0_${id.slice(3, 11)}`;
}

async function vmTask(): Promise<TaskJson | undefined> {
  const r = await cli(['status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { tasks: TaskJson[] }).tasks.find((t) => t.task === 'vme2e/tiny/0');
}

describe.skipIf(!lv.ok)(`factory vm commands and plan apply with a VM${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  let store = '';
  let domain = '';
  let vmDir = '';

  beforeAll(() => {
    fs.writeFileSync(plan, PLAN);
    makeGuestImageSource(path.join(scratch.dir, 'guest'));
  }, 200_000);

  afterAll(async () => {
    await cli(['plan', 'destroy', plan]).catch(() => undefined);
    if (store && store.startsWith('/var/lib/factory/stores/')) fs.rmSync(store, { recursive: true, force: true });
    scratch.cleanup();
    if (lv.ok) await lv.release();
  }, 200_000);

  test('vm push copies the image once; a second push is skipped', async () => {
    const r = await cli(['vm', 'push', path.join(scratch.dir, 'guest'), '--name', 'tiny', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ name: 'tiny', ok: true, agents: [{ agent: 'local', action: 'pushed' }] });
    expect(j.id).toMatch(/^[0-9a-f]{64}$/);
    const again = await cli(['vm', 'push', path.join(scratch.dir, 'guest'), '--name', 'tiny', '--json']);
    expect(JSON.parse(again.stdout).agents[0].action).toBe('present');
    store = storeDir();
    expect(store.startsWith('/var/lib/factory/stores/')).toBe(true);
  }, 200_000);

  test('plan apply starts the VM; status shows it running with its power state', async () => {
    const r = await cli(['plan', 'apply', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results).toEqual([expect.objectContaining({ task: 'vme2e/tiny/0', action: 'start', ok: true, state: 'running' })]);
    expect(await vmTask()).toMatchObject({ driver: 'libvirt', state: 'running', power: 'running' });
    vmDir = await vmDirName();
    await waitFor(() => consoleOf(path.join(store, 'vms', vmDir, 'console.log')).includes('FACTORY-GUEST-READY'), 150_000, 250);
    domain = (JSON.parse(fs.readFileSync(path.join(store, 'vms', vmDir, 'vm.json'), 'utf8')) as { domain: string }).domain;
    const human = await cli(['status']);
    expect(human.stdout).toMatch(/vme2e\/tiny\/0\s+local\s+libvirt\s+\d+\s+running \[running\]/);
    const again = await cli(['plan', 'apply', plan, '--json']);
    expect(JSON.parse(again.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
  }, 200_000);

  test('vm stop shuts it down gracefully; vm image refuses a running VM; vm start powers it on', async () => {
    const stop = await cli(['vm', 'stop', 'tiny/0', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(JSON.parse(stop.stdout)).toMatchObject({ task: 'vme2e/tiny/0', agent: 'local', action: 'stop', power: 'shut off', state: 'stopped' });
    expect(await vmTask()).toMatchObject({ state: 'stopped', power: 'shut off' });
    const start = await cli(['vm', 'start', 'vme2e/tiny/0', '--json']);
    expect(JSON.parse(start.stdout)).toMatchObject({ power: 'running', state: 'running' });
    const img = await cli(['vm', 'image', 'vme2e/tiny/0', 'golden']);
    expect(img.code).toBe(1);
    expect(img.stderr).toMatch(/only a shut off VM can be imaged/);
    expect(img.stderr).toMatch(/shut it down first: factory vm stop vme2e\/tiny\/0/);
  }, 200_000);

  test('vm commands refuse a task that is not a VM or does not exist', async () => {
    const r = await cli(['vm', 'stop', 'nope/0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no task 'nope\/0'/);
  });

  test('plan destroy removes the domain, its disk and its network', async () => {
    const r = await cli(['plan', 'destroy', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(path.join(store, 'vms'))).toEqual([]);
    // other runs of this suite may have their own vme2e VM on this libvirtd: look for ours by name
    expect(domain).toMatch(new RegExp(`^fct-[0-9a-f]{8}-${vmDir.replace(/\./g, '\\.')}$`));
    expect(vmDir).toMatch(/^vme2e\.tiny\.0_[0-9a-f]{8}$/);
    expect(virsh('list', '--all', '--name').split('\n').map((n) => n.trim())).not.toContain(domain);
    expect(virsh('net-list', '--all', '--name').split('\n').map((n) => n.trim())).not.toContain(domain.replace(/vme2e\.tiny\.0_[0-9a-f]{8}$/, 'lab'));
    expect(await vmTask()).toBeUndefined();
  }, 200_000);
});
