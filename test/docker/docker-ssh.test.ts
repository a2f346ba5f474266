/**
 * Containers through the SSH transport: a real sshd whose sessions point the executor at a private
 * dockerd (sshd's SetEnv, as a host's environment would), a plan with a container applied with the
 * built CLI over SSH, the container running with the factory's labels and limits, logs over SSH,
 * and destroy leaving no container behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, waitFor } from '../helpers/cli.js';
import { TEST_IMAGE, buildTestImage, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { oneCluster } from '../helpers/inventory.js';
import { sshTestFleet } from '../helpers/ssh-fleet.js';

const ssh = sshTestFleet('factory-docker-ssh-');
const started = ssh.skip ? { skip: ssh.skip } : await startDockerd();
const skip = 'skip' in started ? started.skip : undefined;
if (skip) console.warn(`docker over SSH tests skipped: ${skip}`);
const d = started as Dockerd;

const plan = path.join(ssh.dir, 'box.yaml');

const cli = (args: string[]) => runCli([...args, '--inventory', ssh.inventory, '--state', ssh.state], { cwd: ssh.dir, timeoutMs: 90_000 });

beforeAll(async () => {
  if (skip) return;
  await buildTestImage(d.docker);
  await ssh.start({
    first: 51,
    hosts: 1,
    extraConfig: [`SetEnv FACTORY_DOCKER_HOST=${d.host}`],
    settings: { connectTimeout: '5s' },
    idcs: oneCluster('dc', 'c', [{ name: 'remote', host: 51 }]),
  });
  fs.writeFileSync(
    plan,
    `name: box
containers:
  - name: echo
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "echo hello-over-ssh; exec sleep 600"]
    resources: {cpus: 0.5, mem: 48Mi}
    stopGrace: 1s
`,
  );
}, 180_000);

afterAll(async () => {
  if (!skip) await cli(['plan', 'destroy', plan]).catch(() => undefined);
  await ssh.stop();
  if (!skip) await d.stop();
}, 120_000);

describe.skipIf(skip)(`docker driver over the SSH transport${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('the agent reports the docker driver, a container plan lands, runs with its limits, and is destroyed', async () => {
    const agents = await cli(['agents', 'list', '--json']);
    expect(agents.code, agents.stderr).toBe(0);
    expect(JSON.parse(agents.stdout).agents[0].drivers).toContain('docker');

    const a = await cli(['plan', 'apply', plan, '--json']);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).changes).toEqual({ create: 1, destroy: 0, update: 0 });

    const list = await d.docker.listContainers({ all: true, filters: { label: ['factory.task=box/echo/0'] } });
    expect(list).toHaveLength(1);
    expect(list[0]!.State).toBe('running');
    const info = await d.docker.getContainer(list[0]!.Id).inspect();
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.Memory).toBe(48 * 1024 * 1024);

    const s = JSON.parse((await cli(['status', '--json'])).stdout);
    expect(s.tasks).toMatchObject([{ task: 'box/echo/0', agent: 'remote', driver: 'docker', state: 'running' }]);

    expect(await waitFor(async () => (await cli(['logs', 'box/echo/0'])).stdout.includes('hello-over-ssh'), 20_000, 500)).toBe(true);

    const again = await cli(['plan', 'apply', plan, '--json']);
    expect(JSON.parse(again.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });

    const gone = await cli(['plan', 'destroy', plan, '--json']);
    expect(gone.code, gone.stderr).toBe(0);
    expect(await d.docker.listContainers({ all: true, filters: { label: ['factory.task=box/echo/0'] } })).toEqual([]);
  });
});
