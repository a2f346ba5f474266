/**
 * The API on real listeners: TLS on 127.0.0.1 port 0 (the state's self-signed certificate, pinned by
 * the test as its CA) and the state's unix socket.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiHost } from '../../src/api/host.js';
import type { MemoryBackend } from '../../src/state/memory-backend.js';
import { FakeControl, planText, publish, seeded } from './helpers.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let dir: string;
let host: ApiHost;
let backend: MemoryBackend;
let control: FakeControl;
let ca: string;
let root: string;
let alpha: string;
const logs: string[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-api-'));
  backend = await seeded({ maxEvents: 50, maxAgeMs: 3600_000, perSubject: 1000 });
  control = new FakeControl();
  host = await ApiHost.start({
    stateDir: dir,
    backend,
    services: control,
    listen: '127.0.0.1:0',
    log: (l) => logs.push(l),
    app: { sseHeartbeatMs: 50, sseMaxBuffer: 256 * 1024 },
  });
  ca = fs.readFileSync(path.join(dir, 'tls', 'cert.pem'), 'utf8');
  root = fs.readFileSync(path.join(dir, 'tokens', 'root'), 'utf8').trim();
  alpha = (await host.tokens.create({ scope: 'write', project: 'alpha', by: 'test' })).token;
});
afterAll(async () => {
  await host?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function request(opts: { method?: string; path: string; token?: string; headers?: Record<string, string>; body?: string | Buffer; socket?: boolean }): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
  return new Promise((resolve, reject) => {
    const cb = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const [h, port] = host.address!.split(':');
    const req = opts.socket
      ? http.request({ socketPath: host.socket, path: opts.path, method: opts.method ?? 'GET', headers }, cb)
      : https.request({ host: h, port: Number(port), path: opts.path, method: opts.method ?? 'GET', headers, ca, servername: 'localhost' }, cb);
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** SseClient reads an event stream and parses its events. */
class SseClient {
  events: { id?: string; event?: string; data?: string }[] = [];
  comments = 0;
  ended = false;
  res?: http.IncomingMessage;
  private buf = '';
  private req?: http.ClientRequest;
  private waiters: (() => void)[] = [];

  constructor(private readonly reqPath: string, private readonly headers: Record<string, string> = {}, private readonly paused = false) {}

  open(): Promise<number> {
    const [h, port] = host.address!.split(':');
    return new Promise((resolve, reject) => {
      this.req = https.get({ host: h, port: Number(port), path: this.reqPath, headers: { authorization: `Bearer ${root}`, ...this.headers }, ca, servername: 'localhost' }, (res) => {
        this.res = res;
        if (this.paused) res.pause();
        res.setEncoding('utf8');
        res.on('data', (c: string) => this.feed(c));
        res.on('end', () => {
          this.ended = true;
          this.wake();
        });
        res.on('error', () => {
          this.ended = true;
          this.wake();
        });
        resolve(res.statusCode!);
      });
      this.req.on('error', (err) => {
        this.ended = true;
        this.wake();
        reject(err);
      });
    });
  }

  private feed(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const ev: { id?: string; event?: string; data?: string } = {};
      let comment = true;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        comment = false;
        const [k, ...v] = line.split(': ');
        (ev as Record<string, string>)[k!] = v.join(': ');
      }
      if (comment) this.comments++;
      else this.events.push(ev);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(pred: () => boolean, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out; got ${this.events.length} events`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  ids(): number[] {
    return this.events.filter((e) => e.id !== undefined && e.event === undefined).map((e) => Number(e.id));
  }

  close(): void {
    this.req?.destroy();
  }
}

describe('TLS listener', () => {
  it('prints where it listens and the fingerprint; port 0 got a port', () => {
    expect(host.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(host.address).not.toMatch(/:0$/);
    expect(logs.join('\n')).toContain(host.tls!.fingerprint);
    expect(host.tls!.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(logs.join('\n')).toContain(path.join(dir, 'tokens', 'root'));
    expect(fs.statSync(path.join(dir, 'tokens', 'root')).mode & 0o777).toBe(0o600);
  });

  it('401 on a missing or wrong token', async () => {
    expect((await request({ path: '/v1/tasks' })).status).toBe(401);
    const wrong = await request({ path: '/v1/tasks', token: `${root.slice(0, 17)}_${'A'.repeat(32)}` });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).error.code).toBe('E_UNAUTHORIZED');
    expect((await request({ path: '/v1/tasks', token: root })).status).toBe(200);
  });

  it('a project token: another project\'s task is 404, writes outside it 403', async () => {
    expect((await request({ path: '/v1/tasks/db%2Fdb%2F0', token: alpha })).status).toBe(404);
    expect((await request({ method: 'POST', path: '/v1/tasks/db%2Fdb%2F0/restart', token: alpha })).status).toBe(404);
    const apply = await request({ method: 'POST', path: '/v1/plans/apply', token: alpha, body: JSON.stringify({ plans: [{ file: 'db.yaml', text: planText('db', 'beta') }] }) });
    expect(apply.status).toBe(403);
    expect(control.calls).toEqual([]);
  });

  it('an oversized body is 413, malformed JSON 400, bad names 400', async () => {
    const big = await request({ method: 'POST', path: '/v1/plans/diff', token: root, body: Buffer.alloc(9 * 1024 * 1024, 0x20) }).catch((err: Error) => err);
    if (big instanceof Error) throw big;
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error.code).toBe('E_TOO_LARGE');
    const bad = await request({ method: 'POST', path: '/v1/plans/apply', token: root, body: '{"plans": [}' });
    expect(bad.status).toBe(400);
    expect(bad.body).not.toMatch(/\n\s+at /);
    for (const p of ['/v1/tasks/..%2F..%2Fetc', '/v1/tasks/a%20b', '/v1/tasks/x%26%26reboot']) expect((await request({ path: p, token: root })).status, p).toBe(400);
    expect(control.calls).toEqual([]);
  });

  it('a request whose deadline passed is 408 and the operation never runs', async () => {
    const res = await request({
      method: 'POST',
      path: '/v1/plans/destroy',
      token: root,
      headers: { 'x-factory-deadline': String(Date.now() - 1), 'x-request-id': 'ctrl-c-1' },
      body: JSON.stringify({ plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] }),
    });
    expect(res.status).toBe(408);
    expect(res.headers['x-request-id']).toBe('ctrl-c-1');
    await new Promise((r) => setTimeout(r, 100));
    expect(control.calls).toEqual([]);
    expect(backend.eventsSince(0).events.some((e) => e.kind.startsWith('plan-destroy'))).toBe(false);
  });
});

describe('event stream', () => {
  it('resumes with Last-Event-ID: a contiguous revision sequence, nothing lost or repeated', async () => {
    const start = backend.view().rev;
    let stop = false;
    // a writer commits all along, while the client reads, leaves and comes back
    const writer = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        await publish(backend, [{ topic: 'task', kind: 'tick', message: `tick ${i}`, task: `t/${i % 7}/0` }]);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const first = new SseClient(`/v1/events?since=${start}`);
    expect(await first.open()).toBe(200);
    await first.until(() => first.ids().length >= 20);
    first.close();
    const got = first.ids();
    await new Promise((r) => setTimeout(r, 30)); // events committed while nobody listens
    const second = new SseClient(`/v1/events?since=${start}`, { 'last-event-id': String(got.at(-1)) });
    await second.open();
    await second.until(() => second.ids().length >= 30);
    stop = true;
    await writer;
    const latest = backend.view().rev;
    await second.until(() => second.ids().at(-1) === latest);
    second.close();
    const all = [...got, ...second.ids()];
    expect(all).toEqual(Array.from({ length: latest - start }, (_, i) => start + 1 + i));
  });

  it('a revision older than kept gets an explicit reset', async () => {
    await publish(backend, Array.from({ length: 60 }, (_, i) => ({ topic: 'state' as const, kind: 'filler', message: `f${i}` })));
    const latest = backend.view().rev;
    const c = new SseClient('/v1/events?since=1');
    await c.open();
    await c.until(() => c.events.length >= 1);
    c.close();
    expect(c.events[0]!.event).toBe('reset');
    expect(c.events[0]!.id).toBe(String(latest));
    expect(JSON.parse(c.events[0]!.data!).latest).toBe(latest);
  });

  it('a listing (follow=false, no since: `factory events`) gets every event kept, even after drops, without a reset', async () => {
    await publish(backend, Array.from({ length: 60 }, (_, i) => ({ topic: 'state' as const, kind: 'filler', message: `l${i}` })));
    const kept = backend.eventsSince(0);
    expect(kept.reset).toBe(true); // some were dropped: a reader resuming from 0 would be told to reset
    const c = new SseClient('/v1/events?follow=false');
    try {
      await c.open();
      await c.until(() => c.ids().at(-1) === kept.latest);
    } finally {
      c.close();
    }
    expect(c.events.some((e) => e.event === 'reset')).toBe(false);
    expect(c.ids()).toEqual(kept.events.map((e) => e.rev));
    // a follower with no revision starts from now; one resuming from a dropped revision still gets the reset
    const now = new SseClient('/v1/events');
    await now.open();
    await now.until(() => now.comments >= 1);
    now.close();
    expect(now.ids()).toEqual([]);
    const resumed = new SseClient('/v1/events?follow=false&since=1');
    await resumed.open();
    await resumed.until(() => resumed.events.length >= 1);
    resumed.close();
    expect(resumed.events[0]!.event).toBe('reset');
  });

  it('sends heartbeats and filters by topic and project', async () => {
    const [h, port] = host.address!.split(':');
    void h;
    void port;
    const c = new SseClient('/v1/events?topic=agent', { authorization: `Bearer ${alpha}` });
    await c.open();
    const before = backend.view().rev;
    await publish(backend, [
      { topic: 'agent', kind: 'agent-lost', message: 'a1 lost', agent: 'a1' },
      { topic: 'agent', kind: 'x', message: 'alpha agent thing', project: 'alpha' },
      { topic: 'task', kind: 'y', message: 'alpha task', project: 'alpha', task: 'web/web/0' },
      { topic: 'agent', kind: 'z', message: 'beta', project: 'beta' },
    ]);
    await c.until(() => c.ids().length >= 1 && c.comments >= 2);
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    expect(c.ids()).toEqual([before + 2]);
  });

  it('a long catch-up is paced by the reader, not dropped as slow', async () => {
    const from = backend.view().rev;
    const big = 'y'.repeat(16 * 1024);
    await publish(backend, Array.from({ length: 45 }, (_, j) => ({ topic: 'task' as const, kind: 'backlog', message: big, task: `b/${j}/0` })));
    const latest = backend.view().rev;
    const c = new SseClient(`/v1/events?since=${from}`);
    await c.open();
    await c.until(() => c.ids().at(-1) === latest);
    c.close();
    expect(c.ids()).toEqual(Array.from({ length: 45 }, (_, i) => from + 1 + i));
    expect(c.events.some((e) => e.event === 'drop')).toBe(false);
  });

  it('a slow reader is dropped with a reason and the host keeps answering', async () => {
    const c = new SseClient('/v1/events', {}, true);
    await c.open();
    const big = 'x'.repeat(16 * 1024);
    let healthMs = 0;
    for (let i = 0; i < 100 && !logs.some((l) => l.includes('slow reader')); i++) {
      await publish(backend, Array.from({ length: 50 }, (_, j) => ({ topic: 'task' as const, kind: 'spam', message: big, task: `s/${j}/0` })));
      const t0 = Date.now();
      expect((await request({ path: '/v1/health' })).status).toBe(200);
      healthMs = Math.max(healthMs, Date.now() - t0);
    }
    expect(logs.some((l) => l.includes('dropped: slow reader'))).toBe(true);
    expect(healthMs).toBeLessThan(2000);
    c.res!.resume();
    await c.until(() => c.ended, 10_000);
    expect(c.events.at(-1)?.event).toBe('drop');
    expect(JSON.parse(c.events.at(-1)!.data!).reason).toMatch(/slow reader/);
    const m = await request({ path: '/metrics', token: root });
    expect(m.body).toContain('factory_event_subscribers_dropped_total{reason="slow-reader"} 1');
  });

  it('a revision from the future is 400', async () => {
    expect((await request({ path: `/v1/events?since=${backend.view().rev + 1}`, token: root })).status).toBe(400);
  });
});

describe('unix socket', () => {
  it('is mode 0600 and trusts its user without a token; writes are events by local:<user>', async () => {
    expect(fs.statSync(host.socket).mode & 0o777).toBe(0o600);
    expect((await request({ socket: true, path: '/v1/tasks' })).status).toBe(200);
    const before = backend.view().rev;
    const res = await request({ socket: true, method: 'POST', path: '/v1/tasks/db%2Fdb%2F0/restart' });
    expect(res.status).toBe(200);
    const user = os.userInfo().username;
    expect(control.calls.at(-1)).toMatchObject({ op: 'restart', arg: 'db/db/0', by: `local:${user}` });
    expect(backend.eventsSince(before).events.find((e) => e.kind === 'task-restart-requested')?.by).toBe(`local:${user}`);
    expect((await request({ socket: true, path: '/v1/tasks/..%2Fx' })).status).toBe(400);
  });

  it('a write whose client went away while it waited never runs (the seed\'s Ctrl-C bug)', async () => {
    let release!: () => void;
    control.gate = new Promise<void>((r) => (release = r));
    const apply = request({ socket: true, method: 'POST', path: '/v1/plans/apply', body: JSON.stringify({ plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] }) });
    await new Promise((r) => setTimeout(r, 50));
    const gone = http.request({ socketPath: host.socket, path: '/v1/plans/destroy', method: 'POST', headers: { 'content-type': 'application/json' } });
    gone.on('error', () => undefined);
    gone.end(JSON.stringify({ plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] }));
    await new Promise((r) => setTimeout(r, 100));
    gone.destroy(); // Ctrl-C
    await new Promise((r) => setTimeout(r, 100));
    release();
    control.gate = undefined;
    const applied = (await apply).body;
    expect(JSON.parse(applied.trim().split('\n').at(-1)!).result?.ok, applied).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(control.calls.map((c) => c.op).filter((op) => op === 'destroy')).toEqual([]);
    expect(logs.some((l) => /dropped plan destroy web: the client went away/.test(l))).toBe(true);
  });

  it('health tells strangers only that it is up', async () => {
    expect(JSON.parse((await request({ path: '/v1/health' })).body)).toEqual({ ok: true, api: '1' });
    expect(JSON.parse((await request({ path: '/v1/health', token: root })).body).stateDir).toBe(dir);
    expect(JSON.parse((await request({ socket: true, path: '/v1/health' })).body).socket).toBe(host.socket);
  });

  it('a second host on the same state is refused while this one lives', async () => {
    await expect(ApiHost.start({ stateDir: dir, backend, services: control })).rejects.toMatchObject({ code: 'E_CONTROL_RUNNING' });
    expect((await request({ socket: true, path: '/v1/health' })).status).toBe(200);
  });
});
