/**
 * `factory image push` between two real engines: the control host's dockerd (A) and an agent's (B),
 * through a real executor over the local transport. Loaded once, skipped when present, verified by
 * archive sha256 and image id; the pushed image runs on the agent.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pushToAgent, saveImage, type SavedImage } from '../../src/control/images.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { LocalTransport } from '../../src/transport/local.js';
import { TEST_IMAGE, buildTestImage, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { tempDir } from '../executors/helpers.js';

const [a, b] = await Promise.all([startDockerd(), startDockerd()]);
const skip = 'skip' in a! ? a.skip : 'skip' in b! ? b.skip : undefined;
if (skip) console.warn(`image push tests skipped: ${skip}`);
const control = a as Dockerd;
const agent = b as Dockerd;

let workDir: string;
let client: ExecutorClient;
let saved: SavedImage;

beforeAll(async () => {
  if (skip) return;
  await buildTestImage(control.docker);
  workDir = tempDir('factory-push-');
  client = await ExecutorClient.connect(new LocalTransport('b', { env: { FACTORY_DOCKER_HOST: agent.host } }), { workDir, agent: 'b' });
  saved = await saveImage(control.docker, TEST_IMAGE);
}, 120_000);

afterAll(async () => {
  if (skip) {
    for (const d of [a, b]) if (d && !('skip' in d)) await d.stop();
    return;
  }
  await client?.close();
  saved?.remove();
  await Promise.all([control.stop(), agent.stop()]);
  fs.rmSync(workDir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(skip !== undefined)(`image push (two real engines)${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  test('loads on the agent with the same id, in chunks; skipped the second time', async () => {
    expect(saved.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(saved.size).toBeGreaterThan(512 * 1024);
    expect(await client.imageInspect(TEST_IMAGE)).toEqual({ image: TEST_IMAGE, present: false });

    const first = await pushToAgent(client, saved, { chunkBytes: 256 * 1024 });
    expect(first, JSON.stringify(first)).toMatchObject({ agent: 'b', action: 'loaded', id: saved.id, bytes: saved.size });
    expect((await agent.docker.getImage(TEST_IMAGE).inspect()).Id).toBe(saved.id);
    expect(fs.readdirSync(`${workDir}/images`)).toEqual([]); // staged archive removed

    const second = await pushToAgent(client, saved);
    expect(second).toMatchObject({ action: 'skipped', id: saved.id });
  });

  test('the pushed image runs on the agent', async () => {
    const s = await client.run({
      task: 'pushed/g/0', driver: 'docker', specHash: 'h', command: ['sh', '-c', 'echo from-pushed-image; exec sleep 600'], env: {},
      image: TEST_IMAGE, resources: { cpus: 0.1, mem: 16 * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] },
      labels: { plan: 'pushed', group: 'g', project: 't' }, stopGraceMs: 0,
    });
    expect(s.state, s.error).toBe('running');
    await client.stop('pushed/g/0', { graceMs: 0 });
  });

  test('a corrupted archive or a wrong image id is refused', async () => {
    const data = fs.readFileSync(saved.file);
    const base = { image: 'factory-test/other:1', imageId: saved.id, sha256: saved.sha256, size: data.length, offset: 0, data: data.toString('base64'), done: true };
    const flipped = Buffer.from(data);
    flipped[1000] = flipped[1000]! ^ 0xff;
    await expect(client.imageLoad({ ...base, data: flipped.toString('base64') })).rejects.toThrow(/sha256 .* does not match/);
    await expect(client.imageLoad({ ...base, image: TEST_IMAGE, imageId: `sha256:${'0'.repeat(64)}` })).rejects.toThrow(/loaded image id .* does not match/);
    await expect(client.imageLoad({ ...base, offset: 10, done: false })).rejects.toThrow(/offset 10/);
  });

  test('an image missing on the control host is a clear error', async () => {
    await expect(saveImage(control.docker, 'factory-test/absent:1')).rejects.toThrow(/image factory-test\/absent:1 is not in the local docker engine/);
  });
});
