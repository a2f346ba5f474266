/**
 * The docker driver with state ids, against a real private dockerd: two states on one workDir (so one
 * container scope) run the same task id as two containers named `…_<8 hex of the state id>` and
 * labelled factory.state; each finds only its own by task id, lists the other's with its state, and
 * never stops it. A legacy container (no suffix, no label) keeps its name and is never re-adopted by run.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type Docker from 'dockerode';
import { DockerDriver, LABELS, containerName } from '../../src/executors/drivers/docker.js';
import type { TaskRunSpec } from '../../src/protocol/messages.js';
import { dockerTaskSpec, dockerTestEngine } from '../helpers/docker-engine.js';

const engine = await dockerTestEngine('docker state id');
const skip = engine.skip;

const A = 'st-aaaaaaaaaaaa';
const B = 'st-bbbbbbbbbbbb';
let workDir: string;
let docker: Docker;
let da: DockerDriver;
let db: DockerDriver;
let legacy: DockerDriver;

function spec(task: string, over: Partial<TaskRunSpec> = {}): TaskRunSpec {
  return dockerTaskSpec(task, ['sleep', '300'], { resources: { cpus: 0.2, mem: 32 * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] }, restart: 'never', ...over });
}

beforeAll(async () => {
  if (skip) return;
  ({ docker, workDir } = await engine.prepare('factory-docker-state-'));
  const ctx = { workDir, limits: 'cgroup-v1' as const, log: () => undefined, agent: 'test-agent' };
  da = new DockerDriver({ ...ctx, state: A }, docker);
  db = new DockerDriver({ ...ctx, state: B }, docker);
  legacy = new DockerDriver(ctx, docker);
}, 120_000);

afterAll(() => engine.stop(), 60_000);

describe.skipIf(skip !== undefined)(`docker driver with state ids (real dockerd)${skip !== undefined ? ` (skipped: ${skip})` : ''}`, () => {
  test('two states, same task id: two containers, names and labels per state, each finds and stops only its own', async () => {
    const ra = await da.run(spec('q/t/0'));
    const rb = await db.run(spec('q/t/0'));
    expect(ra.state).toBe('running');
    expect(rb.state).toBe('running');
    expect(rb.containerId).not.toBe(ra.containerId);
    expect(ra.stateId).toBe(A);
    expect(rb.stateId).toBe(B);
    const ia = await docker.getContainer(containerName('q/t/0', da.scope, A)).inspect();
    expect(ia.Name).toBe(`/factory-${da.scope}-q.t.0_aaaaaaaa`);
    expect(ia.Config.Labels[LABELS.state]).toBe(A);
    expect((await docker.getContainer(`factory-${da.scope}-q.t.0_bbbbbbbb`).inspect()).Config.Labels[LABELS.state]).toBe(B);

    for (const drv of [da, db]) {
      const list = (await drv.inspect()).filter((t) => t.task === 'q/t/0');
      expect(list.map((t) => [t.stateId, t.containerId]).sort()).toEqual([[A, ra.containerId], [B, rb.containerId]].sort());
    }
    expect((await da.status('q/t/0'))?.containerId).toBe(ra.containerId);
    expect((await db.status('q/t/0'))?.containerId).toBe(rb.containerId);
    // run again is idempotent per state (adopted, same container)
    expect((await db.run(spec('q/t/0'))).containerId).toBe(rb.containerId);

    await db.stop('q/t/0', { graceMs: 0 });
    expect(await db.status('q/t/0')).toBeUndefined();
    await db.stop('q/t/0', { graceMs: 0 }); // idempotent, A's untouched
    const still = await da.status('q/t/0');
    expect(still).toMatchObject({ state: 'running', containerId: ra.containerId });
    await expect(db.logs('q/t/0', { stream: 'both', follow: false }, () => undefined, new AbortController().signal)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await da.stop('q/t/0', { graceMs: 0 });
    expect(await da.status('q/t/0')).toBeUndefined();
  }, 60_000);

  test('a legacy container keeps its name, is found by a state by task id, but run makes the state its own', async () => {
    const old = await legacy.run(spec('old/w/0'));
    expect(old.stateId).toBeUndefined();
    const info = await docker.getContainer(containerName('old/w/0', legacy.scope)).inspect();
    expect(info.Config.Labels[LABELS.state]).toBeUndefined();
    expect((await da.status('old/w/0'))?.containerId).toBe(old.containerId);
    const mine = await da.run(spec('old/w/0'));
    expect(mine.containerId).not.toBe(old.containerId);
    expect(mine.stateId).toBe(A);
    // now the state's own copy is what its lookups find; the legacy one is still listed, untouched
    expect((await da.status('old/w/0'))?.containerId).toBe(mine.containerId);
    expect((await da.inspect()).filter((t) => t.task === 'old/w/0').map((t) => t.stateId ?? 'legacy').sort()).toEqual(['legacy', A]);
    await da.stop('old/w/0', { graceMs: 0 });
    expect((await legacy.status('old/w/0'))?.state).toBe('running');
    await legacy.stop('old/w/0', { graceMs: 0 });
  }, 60_000);
});
