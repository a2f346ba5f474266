/**
 * ApiStateSource against the real HTTP API: buildApp over a MemoryBackend (a fake ControlApi behind
 * it), listening on 127.0.0.1 port 0, and a real ApiClient with a read token. Commits to the backend
 * show up in the source's snapshots (jobs and runs included); a reset of the event stream lists
 * again; a host that goes away leaves the last document with an error line, and its return clears it.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { TokenStore } from '../../src/api/tokens.js';
import { ApiClient } from '../../src/client/http.js';
import type { MemoryBackend } from '../../src/state/memory-backend.js';
import type { StateData } from '../../src/state/types.js';
import { apiActions } from '../../src/tui/api-actions.js';
import { ApiStateSource, type ApiStateSourceOptions } from '../../src/tui/api-source.js';
import type { StateSnapshot } from '../../src/tui/state-source.js';
import { FactoryError } from '../../src/errors.js';
import { JOB_TABLES } from '../../src/tui/jobs-model.js';
import { FakeControl, publish, seeded, task } from '../api/helpers.js';
import { waitFor } from '../helpers/cli.js';
import { sampleDeployments, sampleJobTables } from './fixtures.js';

const FAST: ApiStateSourceOptions = { debounceMs: 50, heartbeatMs: 100, minBackoffMs: 50, maxBackoffMs: 200, timeoutMs: 2_000 };

const apps: FastifyInstance[] = [];
const sources: ApiStateSource[] = [];

afterEach(async () => {
  for (const s of sources.splice(0)) {
    s.close();
    await s.done();
  }
  for (const a of apps.splice(0)) await a.close();
});

/** serve listens with the API over backend on 127.0.0.1 (port 0: any). */
async function serve(backend: MemoryBackend, port = 0, control = new FakeControl()): Promise<{ app: FastifyInstance; port: number }> {
  const app = await buildApp({ backend, services: control, sseHeartbeatMs: 100, auditEvents: false });
  await app.listen({ host: '127.0.0.1', port });
  apps.push(app);
  return { app, port: (app.server.address() as AddressInfo).port };
}

async function clientFor(backend: MemoryBackend, port: number, scope: 'read' | 'write' = 'read'): Promise<ApiClient & { tokenId?: string }> {
  const { token, record } = await new TokenStore(backend).create({ scope, by: 'test' });
  return Object.assign(new ApiClient({ endpoints: [`http://127.0.0.1:${port}`], token, timeoutMs: 2_000, connectTimeoutMs: 1_000 }), { tokenId: record.id });
}

async function open(client: ApiClient, opts: ApiStateSourceOptions = {}): Promise<{ source: ApiStateSource; snaps: StateSnapshot[]; data: () => StateData }> {
  const source = await ApiStateSource.open(client, { ...FAST, ...opts });
  sources.push(source);
  const snaps: StateSnapshot[] = [];
  source.subscribe((s) => snaps.push(s));
  return { source, snaps, data: () => source.current().data! };
}

/** commit writes records (and events) under the lock, as a control operation does. */
async function commit(backend: MemoryBackend, ops: Parameters<MemoryBackend['commit']>[0]['ops'], events: Parameters<MemoryBackend['commit']>[0]['events'] = []): Promise<void> {
  await backend.lock();
  try {
    await backend.commit({ ops, events });
  } finally {
    await backend.unlock();
  }
}

describe('ApiStateSource', () => {
  test('lists agents, tasks and recent events, then follows commits through the event stream', async () => {
    const backend = await seeded();
    const { port } = await serve(backend);
    const client = await clientFor(backend, port);
    const getJson = vi.spyOn(client, 'getJson');
    const { source, data } = await open(client);

    expect(Object.keys(data().tasks).sort()).toEqual(['db/db/0', 'web/web/0']);
    expect(data().agents.a1?.state).toBe('ready');
    expect(source.current().error).toBeUndefined();
    // the stream replays what the host keeps: the events pane is filled
    // (the seeded tasks' two starts, and the test's token)
    expect(await waitFor(() => data().events.map((e) => e.kind).join(',') === 'task-started,task-started,token-created', 3_000, 20), JSON.stringify(data().events)).toBe(true);
    expect(data().events.map((e) => e.rev)).toEqual([1, 2, 3]);

    // a commit with an event: the source lists again and shows the new task
    const listed = getJson.mock.calls.length;
    await commit(backend, [{ table: 'tasks', key: 'web/web/1', value: { ...task('web/web/1', 'alpha'), pid: 4242 } }], [{ topic: 'task', kind: 'task-started', message: 'web 1', task: 'web/web/1', project: 'alpha' }]);
    expect(await waitFor(() => data().tasks['web/web/1']?.pid === 4242, 3_000, 20), JSON.stringify(data().tasks)).toBe(true);
    expect(data().events.at(-1)).toMatchObject({ kind: 'task-started', task: 'web/web/1', rev: backend.view().rev });

    // a burst of commits is one or two listings, not one per event
    const before = getJson.mock.calls.length;
    expect(before).toBeGreaterThan(listed);
    for (let i = 0; i < 20; i++) {
      await commit(backend, [{ table: 'tasks', key: 'web/web/1', value: { ...task('web/web/1', 'alpha'), pid: 5000 + i } }], [{ topic: 'task', kind: 'task-restarted', message: `restart ${i}`, task: 'web/web/1', project: 'alpha' }]);
    }
    expect(await waitFor(() => data().tasks['web/web/1']?.pid === 5019, 3_000, 20), JSON.stringify(data().tasks['web/web/1'])).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    // each listing is two calls (agents and tasks)
    expect((getJson.mock.calls.length - before) / 2).toBeLessThanOrEqual(4);

    // a commit without an event moves no stream: refresh() (the --refresh-interval) picks it up
    await commit(backend, [{ table: 'tasks', key: 'db/db/0', value: { ...task('db/db/0', 'beta'), state: 'exited', exitCode: 3 } }]);
    await source.refresh();
    expect(data().tasks['db/db/0']).toMatchObject({ state: 'exited', exitCode: 3 });
    expect(data().rev).toBe(backend.view().rev);
  });

  test('a reset of the event stream lists again (what changed without an event shows up)', async () => {
    // the host keeps 5 events: the source asks for the last 500, so the stream answers with a reset
    const backend = await seeded({ maxEvents: 5, maxAgeMs: 3600_000, perSubject: 1000 });
    await publish(backend, Array.from({ length: 10 }, (_, i) => ({ topic: 'task' as const, kind: 'task-noted', message: `n${i}`, task: 'web/web/0', project: 'alpha' })));
    const { port } = await serve(backend);
    const client = await clientFor(backend, port);
    // right after the first listing, a change that no event announces: only listing again shows it
    const getJson = client.getJson.bind(client);
    let injected = false;
    vi.spyOn(client, 'getJson').mockImplementation(async (p, o) => {
      const answer = await getJson(p, o);
      if (p === '/v1/tasks' && !injected) {
        injected = true;
        await commit(backend, [{ table: 'tasks', key: 'web/web/0', value: { ...task('web/web/0', 'alpha'), state: 'failed', exitCode: 9 } }]);
      }
      return answer as never;
    });
    const { data, snaps } = await open(client);
    expect(data().tasks['web/web/0']?.state).toBe('running'); // the first listing, before the change
    expect(await waitFor(() => data().tasks['web/web/0']?.state === 'failed', 3_000, 20), JSON.stringify(data().tasks['web/web/0'])).toBe(true);
    expect(snaps.every((s) => !s.error)).toBe(true);
  });

  test('the host going away keeps the last document with an error; its return clears the error and catches up', async () => {
    const backend = await seeded();
    const first = await serve(backend);
    const client = await clientFor(backend, first.port);
    const { source, data } = await open(client);
    expect(Object.keys(data().tasks)).toHaveLength(2);
    const version = source.current().version;

    await first.app.close();
    apps.splice(apps.indexOf(first.app), 1);
    expect(await waitFor(() => source.current().error !== undefined, 3_000, 20), 'no error after the host went away').toBe(true);
    const lost = source.current();
    expect(lost.error).toMatch(/control host http:\/\/127\.0\.0\.1:\d+/);
    expect(lost.error).toMatch(/reconnecting/);
    expect(lost.version).toBeGreaterThan(version);
    expect(Object.keys(lost.data!.tasks).sort()).toEqual(['db/db/0', 'web/web/0']); // the last document stays

    // while it is away, the state moves on (with an event)
    await commit(backend, [{ table: 'tasks', key: 'web/web/0', value: { ...task('web/web/0', 'alpha'), pid: 777 } }], [{ topic: 'task', kind: 'task-restarted', message: 'web', task: 'web/web/0', project: 'alpha' }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(source.current().error).toBeDefined(); // still away: still said

    await serve(backend, first.port);
    expect(await waitFor(() => source.current().error === undefined, 5_000, 20), source.current().error).toBe(true);
    expect(data().tasks['web/web/0']?.pid).toBe(777);
    // the stream resumed after the last revision it delivered: the missed event arrives, once
    expect(await waitFor(() => data().events.some((e) => e.kind === 'task-restarted'), 3_000, 20), JSON.stringify(data().events)).toBe(true);
    expect(data().events.filter((e) => e.kind === 'task-restarted')).toHaveLength(1);

    // and it follows again
    await commit(backend, [{ table: 'tasks', key: 'db/db/0', value: { ...task('db/db/0', 'beta'), pid: 888 } }], [{ topic: 'task', kind: 'task-restarted', message: 'db', task: 'db/db/0', project: 'beta' }]);
    expect(await waitFor(() => data().tasks['db/db/0']?.pid === 888, 3_000, 20)).toBe(true);
  });

  test('carries the jobs and their runs; a job event lists the jobs again and the runs of that job only', async () => {
    const backend = await seeded();
    const tables = sampleJobTables();
    await commit(backend, JOB_TABLES.flatMap((t) => Object.entries(tables[t]!).map(([key, value]) => ({ table: t, key, value }) as never)));
    const { port } = await serve(backend);
    const client = await clientFor(backend, port);
    const getJson = vi.spyOn(client, 'getJson');
    const { source } = await open(client);
    const jobs = () => source.current().jobs!;
    expect(jobs().jobs.map((j) => `${j.id}:${j.running}`)).toEqual(['etl/nightly:0', 'etl/report:0', 'web/backup:0', 'web/tick:1']);
    expect(jobs().jobs[2]).toMatchObject({ suspended: true });
    expect(jobs().runs['etl/nightly']?.map((r) => r.state)).toEqual(['failed', 'succeeded', 'missed']);
    expect(jobs().runs['etl/report']).toEqual([]);
    const paths = () => getJson.mock.calls.map((c) => c[0]);
    expect(paths().filter((p) => p.endsWith('/runs')).sort()).toEqual(['/v1/jobs/etl/nightly/runs', '/v1/jobs/etl/report/runs', '/v1/jobs/web/backup/runs', '/v1/jobs/web/tick/runs']);

    // a task event lists agents and tasks, not the jobs
    await new Promise((r) => setTimeout(r, 200)); // the replayed events settle
    getJson.mockClear();
    await commit(backend, [{ table: 'tasks', key: 'web/web/0', value: { ...task('web/web/0', 'alpha'), pid: 4343 } }], [{ topic: 'task', kind: 'task-restarted', message: 'web', task: 'web/web/0', project: 'alpha' }]);
    expect(await waitFor(() => source.current().data!.tasks['web/web/0']?.pid === 4343, 3_000, 20)).toBe(true);
    expect(paths().filter((p) => p.startsWith('/v1/jobs'))).toEqual([]);

    // a run of web/tick ends (a job event): the jobs are listed again, and only web/tick's runs
    getJson.mockClear();
    const id = 'web/tick/2026-01-01T00:00:29.000Z';
    const ended = { ...tables.runs![id]!, state: 'succeeded' as const, exitCode: 0, finishedAt: '2026-01-01T00:00:30.000Z' };
    await commit(backend, [{ table: 'runs', key: id, value: ended }], [{ topic: 'job', kind: 'job-run-succeeded', message: `${id} succeeded`, job: 'web/tick', run: id, plan: 'web', project: 'acme' }]);
    expect(await waitFor(() => jobs().runs['web/tick']?.[0]?.state === 'succeeded', 3_000, 20), JSON.stringify(jobs().runs['web/tick'])).toBe(true);
    expect(jobs().jobs.find((j) => j.id === 'web/tick')?.running).toBe(0);
    expect(paths().filter((p) => p.startsWith('/v1/jobs'))).toEqual(['/v1/jobs', '/v1/jobs/web/tick/runs']);
    expect(jobs().runs['etl/nightly']).toHaveLength(3); // kept from the listing before

    // refresh() lists the jobs too; a job removed from the host leaves the view
    await commit(backend, [{ table: 'jobs', key: 'web/backup' }]);
    await source.refresh();
    expect(jobs().jobs.map((j) => j.id)).toEqual(['etl/nightly', 'etl/report', 'web/tick']);
    expect(jobs().runs['web/backup']).toBeUndefined();
  });

  test('a host without job routes (an older release) shows no jobs, and is not asked again', async () => {
    const backend = await seeded();
    const { port } = await serve(backend);
    const client = await clientFor(backend, port);
    const getJson = client.getJson.bind(client);
    const spy = vi.spyOn(client, 'getJson').mockImplementation(async (p, o) => {
      if (p.startsWith('/v1/jobs')) throw new FactoryError(`no such endpoint: GET ${p}`, { code: 'E_NOT_FOUND' });
      return getJson(p, o) as never;
    });
    const { source } = await open(client);
    expect(source.current().jobs).toEqual({ jobs: [], runs: {} });
    expect(source.current().error).toBeUndefined();
    await source.refresh();
    expect(spy.mock.calls.filter((c) => c[0].startsWith('/v1/jobs'))).toHaveLength(1);
  });

  test('carries the deployments; a deployment event lists them again, and so does a task listing while one is in progress', async () => {
    const backend = await seeded();
    const deps = sampleDeployments().deployments;
    await commit(backend, Object.entries(deps).map(([key, value]) => ({ table: 'deployments', key, value }) as never));
    const { port } = await serve(backend);
    const client = await clientFor(backend, port);
    const getJson = vi.spyOn(client, 'getJson');
    const { source } = await open(client);
    const list = () => source.current().deployments!;
    expect(list().map((d) => `${d.id}:${d.status}:${d.old}/${d.new}/${d.healthy}`)).toEqual(['dep-0b0b0b0b0b:waiting-promotion:1/1/1', 'dep-0a0a0a0a0a:running:3/2/1', 'dep-0c0c0c0c0c:reverted:0/0/0']);
    const paths = () => getJson.mock.calls.map((c) => c[0]);

    // promoted (a deployment event): listed again
    await new Promise((r) => setTimeout(r, 200)); // the replayed events settle
    getJson.mockClear();
    const promoted = { ...deps['dep-0b0b0b0b0b']!, status: 'running' as const, promoted: true };
    await commit(backend, [{ table: 'deployments', key: promoted.id, value: promoted }], [{ topic: 'deployment', kind: 'deployment-promoted', message: 'promoted', deployment: promoted.id, plan: 'farm', project: 'acme' }]);
    expect(await waitFor(() => list()[0]?.status === 'running', 3_000, 20), JSON.stringify(list()[0])).toBe(true);
    expect(paths().filter((p) => p === '/v1/deployments')).toHaveLength(1);

    // a step that moves a rollout's counts with a task event only: listed with the tasks, while one is in progress
    getJson.mockClear();
    const stepped = { ...deps['dep-0a0a0a0a0a']!, old: 2, tasks: deps['dep-0a0a0a0a0a']!.tasks.map((t) => ({ ...t, state: 'healthy' as const })) };
    await commit(backend, [{ table: 'deployments', key: stepped.id, value: stepped }, { table: 'tasks', key: 'web/web/0', value: { ...task('web/web/0', 'alpha'), pid: 4545 } }], [{ topic: 'task', kind: 'task-started', message: 'web', task: 'web/web/0', project: 'alpha' }]);
    expect(await waitFor(() => list()[1]?.healthy === 2, 3_000, 20), JSON.stringify(list()[1])).toBe(true);
    expect(list()[1]).toMatchObject({ old: 2, new: 2, healthy: 2 });

    // none in progress: a task event lists agents and tasks only
    await commit(backend, Object.values(deps).map((d) => ({ table: 'deployments', key: d.id, value: { ...d, status: 'succeeded' } }) as never), [{ topic: 'deployment', kind: 'deployment-succeeded', message: 'done', deployment: 'dep-0a0a0a0a0a', plan: 'web', project: 'acme' }]);
    expect(await waitFor(() => list().every((d) => d.status === 'succeeded'), 3_000, 20), JSON.stringify(list())).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    getJson.mockClear();
    await commit(backend, [{ table: 'tasks', key: 'web/web/0', value: { ...task('web/web/0', 'alpha'), pid: 4646 } }], [{ topic: 'task', kind: 'task-restarted', message: 'web', task: 'web/web/0', project: 'alpha' }]);
    expect(await waitFor(() => source.current().data!.tasks['web/web/0']?.pid === 4646, 3_000, 20)).toBe(true);
    expect(paths().filter((p) => p === '/v1/deployments')).toEqual([]);
  });

  test('a host without deployment routes (an older release) shows no deployments, and is not asked again', async () => {
    const backend = await seeded();
    const { port } = await serve(backend);
    const client = await clientFor(backend, port);
    const getJson = client.getJson.bind(client);
    const spy = vi.spyOn(client, 'getJson').mockImplementation(async (p, o) => {
      if (p.startsWith('/v1/deployments')) throw new FactoryError(`no such endpoint: GET ${p}`, { code: 'E_NOT_FOUND' });
      return getJson(p, o) as never;
    });
    const { source } = await open(client);
    expect(source.current().deployments).toEqual([]);
    expect(source.current().error).toBeUndefined();
    await source.refresh();
    expect(spy.mock.calls.filter((c) => c[0].startsWith('/v1/deployments'))).toHaveLength(1);
  });

  test('a host that cannot be reached at all fails open() (the command reports it)', async () => {
    const backend = await seeded();
    const { app, port } = await serve(backend);
    const client = await clientFor(backend, port);
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    await expect(ApiStateSource.open(client, FAST)).rejects.toThrow(/127\.0\.0\.1.*refused|refused/);
  });
});

describe('apiActions', () => {
  test("the dashboard's actions are the host's API calls, made with the client's token", async () => {
    const backend = await seeded();
    const control = new FakeControl();
    // the answer of a real vm action (the fake's is shorter)
    const vmAction = control.vmAction.bind(control);
    control.vmAction = async (t, a, ctx) => ({ ...((await vmAction(t, a, ctx)) as object), task: t, action: a, power: 'running' }) as never;
    const { port } = await serve(backend, 0, control);
    const client = await clientFor(backend, port, 'write');
    const actions = apiActions(client);

    expect(await actions.restartTask('web/web/0')).toBe('restarted web/web/0 on a1');
    const lines: string[] = [];
    expect(await actions.drain('a1', false, (l) => lines.push(l))).toBe('a1 draining: 0 tasks moved, none left');
    expect(await actions.drain('a1', true, () => undefined)).toBe('a1 accepts new tasks again');
    expect(lines).toEqual([`draining a1 on http://127.0.0.1:${port}`]);
    await expect(actions.vm!('web/web/0', 'reboot')).resolves.toBe('web/web/0 on a1: running');
    const out: string[] = [];
    await actions.logs('web/web/0', (stream, chunk) => out.push(`${stream}:${chunk}`), new AbortController().signal);
    expect(out).toEqual(['stdout:hello\n', 'stderr:oops\n']);
    expect(control.calls.map((c) => [c.op, c.arg, c.by])).toEqual([
      ['restart', 'web/web/0', client.tokenId],
      ['drain', 'a1', client.tokenId],
      ['undrain', 'a1', client.tokenId],
      ['vm-reboot', 'web/web/0', client.tokenId],
      ['logs', 'web/web/0', client.tokenId],
    ]);

    // an error answer is the action's failure, with the host's message
    control.fail = new Error('boom');
    await expect(actions.restartTask('web/web/0')).rejects.toThrow(/boom|internal/i);
    // a read token may not act
    const reader = apiActions(await clientFor(backend, port, 'read'));
    await expect(reader.restartTask('web/web/0')).rejects.toThrow(/write token/);
  });

  test('run now and suspend/resume of a job are the host\'s job routes, made with the client\'s token', async () => {
    const backend = await seeded();
    const tables = sampleJobTables();
    await commit(backend, JOB_TABLES.flatMap((t) => Object.entries(tables[t]!).map(([key, value]) => ({ table: t, key, value }) as never)));
    const control = new FakeControl();
    // the answers of the real operations (the fake's are shorter)
    control.runJob = async (job, o, ctx) => {
      control.calls.push({ op: 'job-run', arg: job, by: ctx.by } as never);
      return { ...tables.runs!['web/tick/2026-01-01T00:00:29.000Z']!, id: `${job}/2026-01-01T00:00:31.000Z`, job, state: 'claimed', agent: 'a1', force: o.force } as never;
    };
    const suspendJob = control.suspendJob.bind(control);
    control.suspendJob = async (job, suspend, ctx) => ({ ...((await suspendJob(job, suspend, ctx)) as object), next: suspend ? undefined : '2026-01-01T00:15:00.000Z' }) as never;
    const { port } = await serve(backend, 0, control);
    const client = await clientFor(backend, port, 'write');
    const postJson = vi.spyOn(client, 'postJson');
    const actions = apiActions(client);

    expect(await actions.runJob('etl/nightly')).toBe('etl/nightly/2026-01-01T00:00:31.000Z: started on a1');
    expect(await actions.suspendJob('etl/nightly', true)).toBe('etl/nightly suspended');
    expect(await actions.suspendJob('web/backup', false)).toBe('web/backup resumed; next slot 2026-01-01T00:15:00.000Z');
    expect(postJson.mock.calls.map((c) => c[0])).toEqual(['/v1/jobs/etl/nightly/run', '/v1/jobs/etl/nightly/suspend', '/v1/jobs/web/backup/resume']);
    expect(control.calls.map((c) => [c.op, c.arg, c.by])).toEqual([
      ['job-run', 'etl/nightly', client.tokenId],
      ['job-suspend', 'etl/nightly', client.tokenId],
      ['job-resume', 'web/backup', client.tokenId],
    ]);
    // a job the host does not know is the action's failure, with the host's message
    await expect(actions.runJob('etl/gone')).rejects.toThrow(/no job 'etl\/gone'/);
  });
});
