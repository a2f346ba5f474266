/**
 * A full disk during the executor's upload: an SSH agent whose home is a tiny tmpfs cannot receive
 * the bundled executor. The error names the agent and says how much space is free; nothing hangs;
 * the other agent works; the state stays true (the full agent is lost, no task is recorded on it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pidAlive, runCli, scratchDir } from '../helpers/cli.js';
import { SshdFleet, sshdSkipReason } from '../harness/sshd.js';

const skip = sshdSkipReason();
const scratch = scratchDir('factory-ssh-full-');
const fullHome = path.join(scratch.dir, 'full-home');
const state = path.join(scratch.dir, 'state');
const inventory = path.join(scratch.dir, 'inventory.yaml');
const plan = path.join(scratch.dir, 'naps.yaml');
let fleet: SshdFleet | undefined;
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
  fleet = await SshdFleet.start(2, { first: 61 });
  fs.appendFileSync(fleet.host(61).configFile, `Match LocalAddress 127.0.61.1\n  SetEnv HOME=${fullHome}\n`);
  await fleet.stopHost(61);
  await fleet.startHost(61);
  const agent = (name: string, i: number) => `          - name: ${name}
            ssh: {host: 127.0.${i}.1, port: 2222, user: root, identityFile: ${fleet!.clientKey}}
            workDir: ${scratch.dir}/agents/${name}
            resources: {cpus: 2, mem: 1Gi}
`;
  fs.writeFileSync(
    inventory,
    `settings: {connectTimeout: 5s, knownHostsFile: ${fleet.knownHosts}}
idcs:
  - name: dc
    clusters:
      - name: c
        agents:
${agent('full', 61)}${agent('roomy', 62)}`,
  );
  fs.writeFileSync(plan, 'name: naps\nprocesses:\n  - name: nap\n    count: 2\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
}, 60_000);

afterAll(async () => {
  if (!skip) {
    await runCli(['plan', 'destroy', plan, '--inventory', inventory, '--state', state], { cwd: scratch.dir }).catch(() => undefined);
    await fleet?.stop(true);
  }
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  if (mounted) spawnSync('umount', [fullHome]);
  scratch.cleanup();
}, 60_000);

describe.skipIf(skip)(`a full disk during the upload${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('is a clear per-agent error; the other agent takes the tasks; the state stays true', async () => {
    const t0 = Date.now();
    const r = await runCli(['plan', 'apply', plan, '--inventory', inventory, '--state', state, '--json'], { cwd: scratch.dir, timeoutMs: 60_000 });
    expect(Date.now() - t0).toBeLessThan(45_000); // nothing hangs: well inside the CLI's own timeouts
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout);
    const full = a.agents.find((x: { name: string }) => x.name === 'full');
    expect(full.state).toBe('lost');
    expect(full.error).toMatch(/cannot upload the executor/);
    expect(full.error).toMatch(/KiB free/);
    expect(r.stderr).toMatch(/agent full: unreachable: .*cannot upload the executor/);
    expect(a.placements.map((p: { agent: string }) => p.agent)).toEqual(['roomy', 'roomy']);

    const s = JSON.parse((await runCli(['status', '--json', '--inventory', inventory, '--state', state], { cwd: scratch.dir })).stdout);
    for (const t of s.tasks) if (t.pid) started.add(t.pid);
    expect(s.agents.find((x: { name: string }) => x.name === 'full').state).toBe('lost');
    expect(s.tasks.map((t: { agent: string; state: string }) => `${t.agent}:${t.state}`)).toEqual(['roomy:running', 'roomy:running']);
    // no partial executor file left on the full disk
    expect(fs.readdirSync(path.join(fullHome, '.factory')).filter((f) => f.endsWith('.mjs'))).toEqual([]);
  });
});
