/**
 * VMs on an agent reached over SSH (a loopback sshd at 127.0.41.1): the uploaded executor bundle loads
 * @unraid/libvirt from the agent's node_modules, `vm push` sends the image through the SSH channel,
 * `plan apply` boots the VM, `status` shows its power, `vm stop` shuts it down over ACPI and
 * `plan destroy` removes it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { acquireLibvirtd, consoleOf, makeGuestImageSource, testWorkDir } from '../harness/libvirtd.js';
import { waitFor } from '../executors/helpers.js';
import { oneCluster } from '../helpers/inventory.js';
import { sshTestFleet } from '../helpers/ssh-fleet.js';

// a work folder QEMU can read: the agent's VM store is in it
const ssh = sshTestFleet(testWorkDir('vm-ssh-'));
const lv = ssh.skip ? ({ ok: false, reason: ssh.skip } as const) : await acquireLibvirtd();
const agentDir = path.join(ssh.dir, 'agent');
const plan = path.join(ssh.dir, 'vmssh.yaml');

const cli = (args: string[]) => runCli([...args, '--inventory', ssh.inventory, '--state', ssh.state], { cwd: ssh.dir, timeoutMs: 120_000 });

async function vmTask(): Promise<{ task: string; agent: string; state: string; power?: string } | undefined> {
  const r = await cli(['status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { tasks: { task: string; agent: string; state: string; power?: string }[] }).tasks.find((t) => t.task === 'vmssh/tiny/0');
}

describe.skipIf(!lv.ok)(`VMs through the SSH transport${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  beforeAll(async () => {
    await ssh.start({ first: 41, hosts: 1, settings: { connectTimeout: '5s' }, idcs: oneCluster('lab', 'lab-a', [{ name: 'h41', host: 41, workDir: agentDir }]) });
    // how an operator installs the binding on an agent: in the agent's workDir (or npm -g)
    fs.mkdirSync(path.join(agentDir, 'node_modules', '@unraid'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@unraid', 'libvirt'), path.join(agentDir, 'node_modules', '@unraid', 'libvirt'));
    fs.writeFileSync(plan, 'name: vmssh\nproject: e2e\nvms:\n  - name: tiny\n    image: tiny\n    count: 1\n    resources: {cpus: 1, mem: 160Mi}\n    subnet: sshnet\n    stopGrace: 10s\n');
    makeGuestImageSource(path.join(ssh.dir, 'guest'));
  }, 200_000);

  afterAll(async () => {
    await cli(['plan', 'destroy', plan]).catch(() => undefined);
    await ssh.stop();
    if (lv.ok) await lv.release();
  }, 200_000);

  test('the SSH agent offers libvirt; vm push sends the image over the SSH channel', async () => {
    const r = await cli(['vm', 'push', path.join(ssh.dir, 'guest'), '--name', 'tiny', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).agents).toEqual([expect.objectContaining({ agent: 'h41', action: 'pushed' })]);
    const again = await cli(['vm', 'push', path.join(ssh.dir, 'guest'), '--name', 'tiny', '--json']);
    expect(JSON.parse(again.stdout).agents[0].action).toBe('present');
  }, 200_000);

  test('plan apply boots the VM over SSH; status shows power; vm stop shuts it down; destroy removes it', async () => {
    const r = await cli(['plan', 'apply', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(await vmTask()).toMatchObject({ agent: 'h41', state: 'running', power: 'running' });
    // the VM's folder is named for this state: `_<8 hex of its id>`
    const stateId = (JSON.parse((await cli(['status', '--json', '--cached'])).stdout) as { stateId: string }).stateId;
    expect(stateId).toMatch(/^st-[0-9a-f]{12}$/);
    const vmDir = `vmssh.tiny.0_${stateId.slice(3, 11)}`;
    await waitFor(() => consoleOf(path.join(agentDir, 'vm', 'vms', vmDir, 'console.log')).includes('FACTORY-GUEST-READY'), 150_000, 250);
    const stop = await cli(['vm', 'stop', 'vmssh/tiny/0', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(JSON.parse(stop.stdout)).toMatchObject({ agent: 'h41', power: 'shut off' });
    expect(consoleOf(path.join(agentDir, 'vm', 'vms', vmDir, 'console.log'))).toContain('FACTORY-GUEST-POWER-BUTTON');
    expect(await vmTask()).toMatchObject({ state: 'stopped', power: 'shut off' });
    const domain = (JSON.parse(fs.readFileSync(path.join(agentDir, 'vm', 'vms', vmDir, 'vm.json'), 'utf8')) as { domain: string }).domain;
    const d = await cli(['plan', 'destroy', plan, '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(fs.readdirSync(path.join(agentDir, 'vm', 'vms'))).toEqual([]);
    expect(execFileSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' }).split('\n').map((n) => n.trim())).not.toContain(domain);
  }, 240_000);
});
