/** The HTTP layer through app.inject(): callers and scopes, projects, limits, deadlines, errors, streams. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { ApiMetrics } from '../../src/api/metrics.js';
import { TokenStore } from '../../src/api/tokens.js';
import type { MemoryBackend } from '../../src/state/memory-backend.js';
import { FactoryError } from '../../src/errors.js';
import { FakeControl, locked, planText, seeded } from './helpers.js';

let backend: MemoryBackend;
let control: FakeControl;
let app: FastifyInstance;
let tokens: TokenStore;
let metrics: ApiMetrics;
const tok: Record<string, string> = {};
const logs: string[] = [];

beforeEach(async () => {
  backend = await seeded();
  control = new FakeControl();
  tokens = new TokenStore(backend);
  metrics = new ApiMetrics(backend);
  app = await buildApp({ backend, services: control, tokens, metrics, bodyLimit: 64 * 1024, keepAliveMs: 20, log: (l) => logs.push(l) });
  tok.admin = (await tokens.create({ scope: 'admin', by: 'test' })).token;
  tok.read = (await tokens.create({ scope: 'read', by: 'test' })).token;
  tok.alphaWrite = (await tokens.create({ scope: 'write', project: 'alpha', by: 'test' })).token;
  tok.alphaAdmin = (await tokens.create({ scope: 'admin', project: 'alpha', by: 'test' })).token;
});
afterEach(async () => {
  await app.close();
});

const auth = (t: string) => ({ authorization: `Bearer ${t}` });
const idOf = (t: string) => t.split('_').slice(0, 2).join('_');

describe('callers', () => {
  it('answers health without a token, everything else needs one', async () => {
    expect((await app.inject({ url: '/v1/health' })).statusCode).toBe(200);
    const none = await app.inject({ url: '/v1/tasks' });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('E_UNAUTHORIZED');
    const bad = await app.inject({ url: '/v1/tasks', headers: auth(`${idOf(tok.admin!)}_${'x'.repeat(32)}`) });
    expect(bad.statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/tasks', headers: auth('garbage') })).statusCode).toBe(401);
  });

  it('orders scopes read < write < admin', async () => {
    expect((await app.inject({ method: 'POST', url: '/v1/tasks/web%2Fweb%2F0/restart', headers: auth(tok.read!) })).statusCode).toBe(403);
    expect((await app.inject({ url: '/v1/tokens', headers: auth(tok.alphaWrite!) })).statusCode).toBe(403);
    expect(control.calls).toEqual([]);
    expect((await app.inject({ method: 'POST', url: '/v1/tasks/web%2Fweb%2F0/restart', headers: auth(tok.admin!) })).statusCode).toBe(200);
  });

  it('a revoked token stops working', async () => {
    const made = await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth(tok.admin!), payload: { scope: 'read' } });
    expect(made.statusCode).toBe(201);
    const { token, record } = made.json();
    expect(token).toMatch(/^fct_[0-9a-f]{12}_/);
    expect(JSON.stringify(backend.view().list('tokens'))).not.toContain(token.split('_')[2]);
    expect((await app.inject({ url: '/v1/tasks', headers: auth(token) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/v1/tokens/${record.id}`, headers: auth(tok.admin!) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/tasks', headers: auth(token) })).statusCode).toBe(401);
    const listed = (await app.inject({ url: '/v1/tokens', headers: auth(tok.admin!) })).json().tokens;
    expect(listed.every((t: Record<string, unknown>) => t.hash === undefined)).toBe(true);
  });

  it('a project admin makes tokens of its project only', async () => {
    expect((await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth(tok.alphaAdmin!), payload: { scope: 'read', project: 'beta' } })).statusCode).toBe(403);
    const made = await app.inject({ method: 'POST', url: '/v1/tokens', headers: auth(tok.alphaAdmin!), payload: { scope: 'read' } });
    expect(made.json().record.project).toBe('alpha');
    const listed = (await app.inject({ url: '/v1/tokens', headers: auth(tok.alphaAdmin!) })).json().tokens;
    expect(listed.every((t: { project?: string }) => t.project === 'alpha')).toBe(true);
    expect((await app.inject({ method: 'DELETE', url: `/v1/tokens/${idOf(tok.admin!)}`, headers: auth(tok.alphaAdmin!) })).statusCode).toBe(404);
  });
});

describe('projects', () => {
  it('a project token sees only its tasks; another project\'s are not found', async () => {
    const list = (await app.inject({ url: '/v1/tasks', headers: auth(tok.alphaWrite!) })).json();
    expect(list.tasks.map((t: { task: string }) => t.task)).toEqual(['web/web/0']);
    expect((await app.inject({ url: '/v1/tasks/db%2Fdb%2F0', headers: auth(tok.alphaWrite!) })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/tasks/web%2Fweb%2F0', headers: auth(tok.alphaWrite!) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/v1/tasks/db%2Fdb%2F0/restart', headers: auth(tok.alphaWrite!) })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/v1/vms/db%2Fdb%2F0/reboot', headers: auth(tok.alphaWrite!) })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/tasks/db%2Fdb%2F0/logs', headers: auth(tok.alphaWrite!) })).statusCode).toBe(404);
    const st = (await app.inject({ url: '/v1/status?cached=true', headers: auth(tok.alphaWrite!) })).json();
    expect(st.tasks.map((t: { task: string }) => t.task)).toEqual(['web/web/0']);
    expect(control.calls.map((c) => c.op)).toEqual(['status']);
  });

  it('writes outside the project are forbidden', async () => {
    const other = await app.inject({ method: 'POST', url: '/v1/plans/apply', headers: auth(tok.alphaWrite!), payload: { plans: [{ file: 'db.yaml', text: planText('db2', 'beta') }] } });
    expect(other.statusCode).toBe(403);
    // a plan recorded under another project cannot be taken over by naming it in one's own
    const takeover = await app.inject({ method: 'POST', url: '/v1/plans/destroy', headers: auth(tok.alphaWrite!), payload: { plans: [{ file: 'db.yaml', text: planText('db', 'alpha') }] } });
    expect(takeover.statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/v1/agents/a1/drain', headers: auth(tok.alphaWrite!) })).statusCode).toBe(403);
    const inv = await app.inject({ method: 'POST', url: '/v1/plans/diff', headers: auth(tok.alphaWrite!), payload: { plans: [{ file: 'w.yaml', text: planText('web', 'alpha') }], inventory: { file: 'inv.yaml', text: 'agents: []' } } });
    expect(inv.statusCode).toBe(403);
    expect(control.calls).toEqual([]);
  });
});

describe('input', () => {
  it('rejects bad names with 400, never 500', async () => {
    for (const url of ['/v1/tasks/..%2Fetc%2Fpasswd', '/v1/tasks/a%20b', '/v1/tasks/a%3Brm%20-rf', '/v1/tasks/%24(id)', '/v1/agents/..%2F..%2Fx/drain', '/v1/agents/a%7Cb/drain', '/v1/vms/a%2F..%2Fb/start', '/v1/tokens/..%2Fx']) {
      const method = url.endsWith('/drain') || url.startsWith('/v1/vms') ? 'POST' : url.startsWith('/v1/tokens') ? 'DELETE' : 'GET';
      const res = await app.inject({ method, url, headers: auth(tok.admin!) });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe('E_BAD_REQUEST');
    }
    const file = await app.inject({ method: 'POST', url: '/v1/plans/diff', headers: auth(tok.admin!), payload: { plans: [{ file: '../../etc/x.yaml', text: planText('x', 'alpha') }] } });
    expect(file.statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/v1/vms/web%2Fweb%2F0/explode', headers: auth(tok.admin!) })).statusCode).toBe(400);
    expect(control.calls).toEqual([]);
  });

  it('malformed JSON is 400, an oversized body 413, no stack traces', async () => {
    const bad = await app.inject({ method: 'POST', url: '/v1/plans/diff', headers: { ...auth(tok.admin!), 'content-type': 'application/json' }, payload: '{"plans": [' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('E_BAD_REQUEST');
    const big = await app.inject({ method: 'POST', url: '/v1/plans/diff', headers: { ...auth(tok.admin!), 'content-type': 'application/json' }, payload: JSON.stringify({ plans: [{ file: 'a.yaml', text: 'x'.repeat(100_000) }] }) });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('E_TOO_LARGE');
    for (const r of [bad, big]) expect(r.body).not.toMatch(/\n\s+at /);
  });

  it('spec errors are 422 with positions in the sent file names', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/plans/diff', headers: auth(tok.admin!), payload: { planTexts: { 'team/web.yaml': 'name: web\nprocesses:\n  - name: x\n    comand: [a]\n' } } });
    expect(res.statusCode).toBe(422);
    const err = res.json().error;
    expect(err.code).toBe('E_SPEC_INVALID');
    expect(err.message).toMatch(/^team\/web\.yaml:\d+:\d+: /);
    expect(err.issues[0].file).toBe('team/web.yaml');
  });

  it('maps control errors to statuses', async () => {
    control.fail = locked();
    expect((await app.inject({ method: 'POST', url: '/v1/agents/a1/drain', headers: auth(tok.admin!) })).statusCode).toBe(409);
    control.fail = new FactoryError('no agent', { code: 'E_AGENT_UNKNOWN' });
    expect((await app.inject({ method: 'POST', url: '/v1/agents/zz/drain', headers: auth(tok.admin!) })).statusCode).toBe(404);
    // etcd without a quorum is the service being unavailable for now (retry), not an internal error
    control.fail = new FactoryError('etcd did not answer', { code: 'E_STATE_UNAVAILABLE', hint: 'is a quorum of the etcd members up and reachable?' });
    const down = await app.inject({ method: 'POST', url: '/v1/agents/a1/drain', headers: auth(tok.admin!) });
    expect(down.statusCode).toBe(503);
    expect(down.json().error).toEqual({ code: 'E_STATE_UNAVAILABLE', message: 'etcd did not answer', hint: 'is a quorum of the etcd members up and reachable?' });
    control.fail = new Error('boom');
    const res = await app.inject({ url: '/v1/status', headers: auth(tok.admin!) });
    expect(res.statusCode).toBe(500);
    expect(res.json().error).toEqual({ code: 'E_INTERNAL', message: 'internal error: boom' });
    expect((await app.inject({ url: '/v1/nope', headers: auth(tok.admin!) })).json().error.code).toBe('E_NOT_FOUND');
  });
});

describe('request id and deadline', () => {
  it('echoes x-request-id or makes one', async () => {
    expect((await app.inject({ url: '/v1/health', headers: { 'x-request-id': 'abc-123' } })).headers['x-request-id']).toBe('abc-123');
    expect((await app.inject({ url: '/v1/health' })).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect((await app.inject({ url: '/v1/health', headers: { 'x-request-id': 'bad id\u0001' } })).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a request past its deadline is 408 and never runs', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/plans/destroy', headers: { ...auth(tok.admin!), 'x-factory-deadline': String(Date.now() - 1000) }, payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    expect(res.statusCode).toBe(408);
    expect(res.json().error.code).toBe('E_DEADLINE');
    expect((await app.inject({ url: '/v1/health', headers: { 'x-factory-deadline': 'soon' } })).statusCode).toBe(400);
    const ok = await app.inject({ method: 'POST', url: '/v1/tasks/web%2Fweb%2F0/restart', headers: { ...auth(tok.admin!), 'x-factory-deadline': String(Date.now() + 60_000) } });
    expect(ok.statusCode).toBe(200);
    expect(control.calls.map((c) => c.op)).toEqual(['restart']);
  });

  it('a write whose deadline passes while it waits for another never runs', async () => {
    let release!: () => void;
    control.gate = new Promise<void>((r) => (release = r));
    const first = app.inject({ method: 'POST', url: '/v1/plans/apply', headers: auth(tok.admin!), payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    await new Promise((r) => setTimeout(r, 50));
    const second = app.inject({ method: 'POST', url: '/v1/tasks/web%2Fweb%2F0/restart', headers: { ...auth(tok.admin!), 'x-factory-deadline': String(Date.now() + 100) } });
    await new Promise((r) => setTimeout(r, 200));
    release();
    expect((await first).statusCode).toBe(200);
    expect((await second).statusCode).toBe(408);
    expect(control.calls.map((c) => c.op)).toEqual(['apply']);
  });
  it('an apply that waits for another write says so in its stream, then runs', async () => {
    let release!: () => void;
    control.gate = new Promise<void>((r) => (release = r));
    const first = app.inject({ method: 'POST', url: '/v1/plans/apply', headers: auth(tok.admin!), payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    await new Promise((r) => setTimeout(r, 50));
    const second = app.inject({ method: 'POST', url: '/v1/plans/apply', headers: auth(tok.admin!), payload: { plans: [{ file: 'db.yaml', text: planText('db', 'alpha') }] } });
    await new Promise((r) => setTimeout(r, 100));
    release();
    expect((await first).statusCode).toBe(200);
    const lines = (await second).body.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ progress: 'waiting for the write before it to finish: plan apply web' });
    expect(lines.at(-1).result.ok).toBe(true);
    expect(control.calls.map((c) => c.op)).toEqual(['apply', 'apply']);
  });
});

describe('operations', () => {
  it('apply answers NDJSON: progress, keep-alives, result; the write is an event by the token', async () => {
    let release!: () => void;
    control.gate = new Promise<void>((r) => (release = r));
    setTimeout(() => release(), 100);
    const res = await app.inject({ method: 'POST', url: '/v1/plans/apply', headers: auth(tok.alphaWrite!), payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/x-ndjson/);
    const lines = res.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ progress: 'connecting to 1 agent' });
    expect(lines.filter((l) => Object.keys(l).length === 0).length).toBeGreaterThan(0);
    expect(lines.at(-1).result.ok).toBe(true);
    expect(control.calls[0]).toMatchObject({ op: 'apply', by: idOf(tok.alphaWrite!) });
    const ev = backend.eventsSince(0).events.find((e) => e.kind === 'plan-apply-requested');
    expect(ev).toMatchObject({ by: idOf(tok.alphaWrite!), project: 'alpha', plan: 'web' });
  });

  it('an apply that fails ends its stream with the error', async () => {
    control.fail = locked();
    const res = await app.inject({ method: 'POST', url: '/v1/plans/apply', headers: auth(tok.admin!), payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    const last = JSON.parse(res.body.trim().split('\n').at(-1)!);
    expect(last.error.code).toBe('E_STATE_LOCKED');
    expect(backend.eventsSince(0).events.some((e) => e.kind === 'plan-apply-requested-failed')).toBe(true);
  });

  it('diff, destroy, drain, undrain, vm actions and logs reach the control side', async () => {
    const diff = await app.inject({ method: 'POST', url: '/v1/plans/diff', headers: auth(tok.read!), payload: { planTexts: { 'web.yaml': planText('web', 'alpha') } } });
    expect(diff.json().changes.create).toBe(1);
    const destroy = await app.inject({ method: 'POST', url: '/v1/plans/destroy', headers: auth(tok.admin!), payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    expect(JSON.parse(destroy.body.trim().split('\n').at(-1)!).result.ok).toBe(true);
    expect((await app.inject({ method: 'POST', url: '/v1/agents/a1/drain', headers: auth(tok.admin!) })).json().draining).toBe(true);
    expect((await app.inject({ method: 'POST', url: '/v1/agents/a1/undrain', headers: auth(tok.admin!) })).json().draining).toBe(false);
    expect((await app.inject({ method: 'POST', url: '/v1/vms/web%2Fweb%2F0/force-off', headers: auth(tok.admin!) })).statusCode).toBe(200);
    const logsRes = await app.inject({ url: '/v1/tasks/web%2Fweb%2F0/logs?tail=10', headers: auth(tok.read!) });
    expect(logsRes.body.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ stdout: 'hello\n' }, { stderr: 'oops\n' }, { result: { end: true } }]);
    expect(control.calls.map((c) => c.op)).toEqual(['diff', 'destroy', 'drain', 'undrain', 'vm-force-off', 'logs']);
    const kinds = backend.eventsSince(0).events.filter((e) => e.by === idOf(tok.admin!)).map((e) => e.kind);
    expect(kinds).toEqual(['plan-destroy-requested', 'agent-drain-requested', 'agent-undrain-requested', 'vm-force-off-requested']);
  });

  it('lists agents and serves metrics', async () => {
    expect((await app.inject({ url: '/v1/agents', headers: auth(tok.read!) })).json().agents.map((a: { name: string }) => a.name)).toEqual(['a1']);
    await app.inject({ url: '/v1/tasks', headers: auth(tok.read!) });
    metrics.observeReconcile(0.5, true);
    const m = await app.inject({ url: '/metrics', headers: auth(tok.read!) });
    expect(m.statusCode).toBe(200);
    for (const name of ['factory_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/tasks",status="200"}', 'factory_tasks{state="running"} 2', 'factory_agents{state="ready"} 1', 'factory_reconcile_pass_duration_seconds_count{outcome="ok"} 1', 'factory_event_subscribers 0', 'factory_state_write_bytes']) {
      expect(m.body).toContain(name);
    }
  });
});

describe('events', () => {
  it('rejects a revision from the future and unknown topics', async () => {
    const future = await app.inject({ url: `/v1/events?since=${backend.view().rev + 5}`, headers: auth(tok.read!) });
    expect(future.statusCode).toBe(400);
    expect((await app.inject({ url: '/v1/events?topic=task,bogus', headers: auth(tok.read!) })).statusCode).toBe(400);
    expect((await app.inject({ url: '/v1/events', headers: { ...auth(tok.read!), 'last-event-id': 'x' } })).statusCode).toBe(400);
  });
});
