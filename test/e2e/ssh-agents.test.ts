/**
 * `factory agents add | list | doctor | remove` against a real loopback sshd (127.0.31.1): the
 * inventory file is edited with its comments kept, doctor reports what is missing with fixes, list
 * shows declared and discovered capacity side by side.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { sshTestFleet } from '../helpers/ssh-fleet.js';

const ssh = sshTestFleet('factory-ssh-agents-');
const skip = ssh.skip;
const inventory = ssh.inventory;

beforeAll(async () => {
  if (skip) return;
  await ssh.start({ first: 31, hosts: 1 });
  // written by hand: the commands under test edit it and must keep its comments
  fs.writeFileSync(
    inventory,
    `# the fleet: keep this comment
settings: {connectTimeout: 3s, knownHostsFile: ${ssh.fleet.knownHosts}}  # host keys of the test fleet
idcs:
  - name: bj1   # Beijing
    clusters:
      - name: bj1-a
        agents: []
`,
  );
}, 60_000);

afterAll(() => ssh.stop());

const cli = (args: string[]) => runCli([...args, '--inventory', inventory, '--state', ssh.state], { timeoutMs: 30_000 });

describe.skipIf(skip)(`factory agents add | list | doctor | remove${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('add writes the agent (comments kept) and checks it', async () => {
    const r = await cli([
      'agents', 'add', 'h31', '--host', '127.0.31.1', '--port', '2222', '--user', 'root', '--identity-file', ssh.fleet.clientKey,
      '--idc', 'sh2', '--cluster', 'sh2-a', '--attribute', 'rack=r3', '--resource', 'cpus=3', '--work-dir', path.join(ssh.dir, 'w31'), '--json',
    ]);
    expect([0, 1]).toContain(r.code); // docker/libvirt may be missing here: warnings, not failures
    const out = JSON.parse(r.stdout);
    const by = Object.fromEntries(out.doctor.checks.map((c: { check: string }) => [c.check, c]));
    expect(by.reachable.status).toBe('ok');
    expect(by.node.status).toBe('ok');
    const text = fs.readFileSync(inventory, 'utf8');
    expect(text).toContain('# the fleet: keep this comment');
    expect(text).toContain('# Beijing');
    expect(text).toContain('name: h31');
    expect(text).toContain('host: 127.0.31.1');
    const dup = await cli(['agents', 'add', 'h31', '--host', 'x', '--idc', 'sh2', '--cluster', 'sh2-a', '--no-check']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/agent h31 is already in/);
  });

  test('list shows effective, declared and discovered capacity', async () => {
    const r = await cli(['agents', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout).agents[0];
    expect(a).toMatchObject({ name: 'h31', idc: 'sh2', cluster: 'sh2-a', state: 'ready' });
    expect(a.declared.cpus).toBe(3);
    expect(a.resources.cpus).toBe(3);
    expect(a.discovered.cpus).toBeGreaterThan(0);
    expect(a.attributes).toMatchObject({ rack: 'r3' });
    expect(a.attributes.hostname).toBeTruthy();
    const human = await cli(['agents', 'list']);
    expect(human.stdout).toMatch(/DECLARED\s+DISCOVERED/);
  });

  test('doctor names an unreachable agent and how to fix it', async () => {
    await cli(['agents', 'add', 'dead', '--host', '127.0.39.1', '--port', '2222', '--user', 'root', '--identity-file', ssh.fleet.clientKey, '--idc', 'sh2', '--cluster', 'sh2-a', '--no-check']);
    const r = await cli(['agents', 'doctor', 'dead', '--json']);
    expect(r.code).toBe(1);
    const rep = JSON.parse(r.stdout).agents[0];
    expect(rep).toMatchObject({ agent: 'dead', ok: false });
    expect(rep.checks[0]).toMatchObject({ check: 'reachable', status: 'fail' });
    expect(rep.checks[0].detail).toMatch(/connection refused/);
    expect(rep.checks[0].fix).toMatch(/sshd/);
  });

  test('remove deletes the entry and keeps the rest of the file', async () => {
    const r = await cli(['agents', 'remove', 'dead']);
    expect(r.code, r.stderr).toBe(0);
    const text = fs.readFileSync(inventory, 'utf8');
    expect(text).not.toContain('name: dead');
    expect(text).toContain('name: h31');
    expect(text).toContain('# Beijing');
    const again = await cli(['agents', 'remove', 'dead']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/agent dead is not in/);
  });
});
