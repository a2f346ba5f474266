/**
 * A full disk during the executor's upload: an SSH agent whose home is a tiny tmpfs cannot receive
 * the bundled executor. The error names the agent and says how much space is free; nothing hangs;
 * the other agent works; the state stays true (the full agent is lost, no task is recorded on it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pidAlive, runCli } from '../helpers/cli.js';
import { oneCluster } from '../helpers/inventory.js';
import { sshTestFleet } from '../helpers/ssh-fleet.js';

const ssh = sshTestFleet('factory-ssh-full-');
const skip = ssh.skip;
const fullHome = path.join(ssh.dir, 'full-home');
const { state, inventory } = ssh;
const plan = path.join(ssh.dir, 'naps.yaml');
let mounted = false;
const started = new Set<number>();

function mountTinyHome(): void {
  fs.mkdirSync(fullHome, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k,mode=0755', 'tmpfs', fullHome], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot mount a tmpfs for the full-disk test: ${r.stderr.trim()}`);
  mounted = true;
}

beforeAll(async () => {
  if (skip) return;
  mountTinyHome();
  // host 61: sessions get HOME on the 16 KiB tmpfs; host 62: the ordinary home
  const resources = { cpus: 2, mem: '1Gi' };
  const fleet = await ssh.start({
    first: 61,
    hosts: 2,
    settings: { connectTimeout: '5s' },
    idcs: oneCluster('dc', 'c', [
      { name: 'full', host: 61, resources },
      { name: 'roomy', host: 62, resources },
    ]),
  });
  fs.appendFileSync(fleet.host(61).configFile, `Match LocalAddress 127.0.61.1\n  SetEnv HOME=${fullHome}\n`);
  await fleet.stopHost(61);
  await fleet.startHost(61);
  fs.writeFileSync(plan, 'name: naps\nprocesses:\n  - name: nap\n    count: 2\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
}, 60_000);

afterAll(async () => {
  if (!skip) await runCli(['plan', 'destroy', plan, '--inventory', inventory, '--state', state], { cwd: ssh.dir }).catch(() => undefined);
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  if (mounted) spawnSync('umount', [fullHome]);
  await ssh.stop();
}, 60_000);

describe.skipIf(skip)(`a full disk during the upload${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('is a clear per-agent error; the other agent takes the tasks; the state stays true', async () => {
    const t0 = Date.now();
    const r = await runCli(['plan', 'apply', plan, '--inventory', inventory, '--state', state, '--json'], { cwd: ssh.dir, timeoutMs: 60_000 });
    expect(Date.now() - t0).toBeLessThan(45_000); // nothing hangs: well inside the CLI's own timeouts
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout);
    const full = a.agents.find((x: { name: string }) => x.name === 'full');
    expect(full.state).toBe('lost');
    expect(full.error).toMatch(/cannot upload the executor/);
    expect(full.error).toMatch(/KiB free/);
    expect(r.stderr).toMatch(/agent full: unreachable: .*cannot upload the executor/);
    expect(a.placements.map((p: { agent: string }) => p.agent)).toEqual(['roomy', 'roomy']);

    const s = JSON.parse((await runCli(['status', '--json', '--inventory', inventory, '--state', state], { cwd: ssh.dir })).stdout);
    for (const t of s.tasks) if (t.pid) started.add(t.pid);
    expect(s.agents.find((x: { name: string }) => x.name === 'full').state).toBe('lost');
    expect(s.tasks.map((t: { agent: string; state: string }) => `${t.agent}:${t.state}`)).toEqual(['roomy:running', 'roomy:running']);
    // no partial executor file left on the full disk
    expect(fs.readdirSync(path.join(fullHome, '.factory')).filter((f) => f.endsWith('.mjs'))).toEqual([]);
  });
});
