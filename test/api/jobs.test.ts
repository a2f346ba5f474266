/** The job routes through app.inject(): project scoping, scopes, run now, suspend through the write queue, run output. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { ApiMetrics } from '../../src/api/metrics.js';
import { TokenStore } from '../../src/api/tokens.js';
import { JOB_DEFAULTS, type JobRecord, type RunRecord } from '../../src/jobs/types.js';
import type { MemoryBackend } from '../../src/state/memory-backend.js';
import { FakeControl, seeded } from './helpers.js';

let backend: MemoryBackend;
let control: FakeControl;
let app: FastifyInstance;
const tok: Record<string, string> = {};

function job(plan: string, name: string, project: string): JobRecord {
  return {
    id: `${plan}/${name}`,
    plan,
    name,
    project,
    spec: { ...JOB_DEFAULTS, history: { ...JOB_DEFAULTS.history }, name, schedule: '0 2 * * *', driver: 'process', command: ['true'], env: {}, resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, constraints: [], stopGraceMs: 1000, line: 1, col: 1 },
    createdAt: '2026-12-01T00:00:00.000Z',
    suspended: false,
    updatedAt: '2026-12-01T00:00:00.000Z',
  };
}
const run = (j: string, slot: string, project: string): RunRecord => ({ id: `${j}/${slot}`, job: j, plan: j.split('/')[0]!, project, slot, trigger: 'schedule', state: 'succeeded', attempt: 1, agent: 'a1', task: `${j}/r1-1`, claimedAt: slot, exitCode: 0, attempts: [] });

beforeEach(async () => {
  backend = await seeded();
  await backend.lock();
  await backend.commit({
    ops: [
      { table: 'jobs', key: 'web/nightly', value: job('web', 'nightly', 'alpha') },
      { table: 'jobs', key: 'db/vacuum', value: job('db', 'vacuum', 'beta') },
      { table: 'cursors', key: 'web/nightly', value: { id: 'web/nightly', cursor: '2026-12-02T02:00:00.000Z', next: '2026-12-03T02:00:00.000Z', counts: { runs: 1, succeeded: 1, failed: 0, missed: 0, skipped: 0 } } },
      { table: 'runs', key: 'web/nightly/2026-12-02T02:00:00.000Z', value: run('web/nightly', '2026-12-02T02:00:00.000Z', 'alpha') },
      { table: 'runs', key: 'db/vacuum/2026-12-02T02:00:00.000Z', value: run('db/vacuum', '2026-12-02T02:00:00.000Z', 'beta') },
    ],
  });
  await backend.unlock();
  control = new FakeControl();
  const tokens = new TokenStore(backend);
  app = await buildApp({ backend, services: control, tokens, metrics: new ApiMetrics(backend), bodyLimit: 64 * 1024, keepAliveMs: 20, log: () => undefined });
  tok.read = (await tokens.create({ scope: 'read', by: 'test' })).token;
  tok.alphaWrite = (await tokens.create({ scope: 'write', project: 'alpha', by: 'test' })).token;
});
afterEach(async () => {
  await app.close();
});

const auth = (t: string) => ({ authorization: `Bearer ${t}` });

describe('job routes', () => {
  it('list jobs with where their schedule stands; a project token sees only its own', async () => {
    const all = (await app.inject({ url: '/v1/jobs', headers: auth(tok.read!) })).json().jobs;
    expect(all.map((j: { id: string }) => j.id)).toEqual(['db/vacuum', 'web/nightly']);
    expect(all[1]).toMatchObject({ schedule: '0 2 * * *', next: '2026-12-03T02:00:00.000Z', suspended: false, running: 0, counts: { runs: 1, succeeded: 1 } });
    const alpha = (await app.inject({ url: '/v1/jobs', headers: auth(tok.alphaWrite!) })).json().jobs;
    expect(alpha.map((j: { id: string }) => j.id)).toEqual(['web/nightly']);
    const hidden = await app.inject({ url: '/v1/jobs/db/vacuum/runs', headers: auth(tok.alphaWrite!) });
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json().error).toMatchObject({ code: 'E_JOB_UNKNOWN', message: "no job 'db/vacuum' in the applied plans" });
    const runs = (await app.inject({ url: '/v1/jobs/web/nightly/runs', headers: auth(tok.alphaWrite!) })).json().runs;
    expect(runs.map((r: RunRecord) => r.id)).toEqual(['web/nightly/2026-12-02T02:00:00.000Z']);
  });

  it('run now needs a write token of the job\'s project, and passes force', async () => {
    expect((await app.inject({ method: 'POST', url: '/v1/jobs/web/nightly/run', headers: auth(tok.read!) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/v1/jobs/db/vacuum/run', headers: auth(tok.alphaWrite!) })).statusCode).toBe(404);
    const ok = await app.inject({ method: 'POST', url: '/v1/jobs/web/nightly/run?force=true', headers: auth(tok.alphaWrite!) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().run).toMatchObject({ job: 'web/nightly', force: true });
    expect(control.calls.map((c) => [c.op, c.arg])).toEqual([['job-run', 'web/nightly']]);
  });

  it('suspend goes through the write queue, audited with who asked', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/jobs/web/nightly/suspend', headers: auth(tok.alphaWrite!) });
    expect(r.statusCode).toBe(200);
    expect(r.json().job).toMatchObject({ id: 'web/nightly', suspended: true });
    const audit = backend.eventsSince(0).events.find((e) => e.kind === 'job-suspend-requested');
    expect(audit).toMatchObject({ topic: 'job', project: 'alpha', plan: 'web' });
  });

  it('one run and its output; a slot that is no run is 404, a malformed one 400', async () => {
    const one = await app.inject({ url: '/v1/runs/web/nightly/2026-12-02T02:00:00.000Z', headers: auth(tok.read!) });
    expect(one.json().run).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect((await app.inject({ url: '/v1/runs/web/nightly/2026-12-01T02:00:00.000Z', headers: auth(tok.read!) })).json().error.code).toBe('E_RUN_UNKNOWN');
    expect((await app.inject({ url: '/v1/runs/web/nightly/yesterday', headers: auth(tok.read!) })).statusCode).toBe(400);
    const logs = await app.inject({ url: '/v1/runs/web/nightly/2026-12-02T02:00:00.000Z/logs', headers: auth(tok.read!) });
    expect(logs.statusCode).toBe(200);
    expect(logs.body.split('\n').filter(Boolean).map((l) => JSON.parse(l))).toContainEqual({ stdout: 'hello\n' });
  });
});
