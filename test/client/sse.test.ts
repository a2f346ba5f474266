/**
 * followEvents against a real SSE server on loopback: resume with Last-Event-ID after the server
 * kills the stream (no revision repeated or skipped), reset, idle timeout, catch-up mode and fatal
 * answers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/client/http.js';
import { followEvents, SseParser, type StreamEvent } from '../../src/client/sse.js';
import { httpsServer, makeCert, unixServer, type Running, type TestCert } from './servers.js';

let cert: TestCert;
let dir: string;
const running: Running[] = [];

beforeAll(() => {
  cert = makeCert();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-sse-'));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});
afterAll(() => {
  fs.rmSync(cert.dir, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

/** frame is one SSE event. */
function frame(rev: number, data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}id: ${rev}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Connection records what one request to /v1/events asked. */
interface Connection {
  lastEventId?: string;
  since?: string;
  topic?: string;
  follow?: string;
}

describe('SseParser', () => {
  it('parses fields, multi-line data, comments and CRLF split across chunks', () => {
    const p = new SseParser();
    const out = [...p.push(': hi\r\nid: 3\r\nevent: x\r'), ...p.push('\ndata: a\ndata: b\n'), ...p.push('\nid: 4\ndata: {"k":1}\n\n')];
    expect(out).toEqual([
      { kind: 'comment', text: 'hi' },
      { kind: 'message', msg: { id: '3', event: 'x', data: 'a\nb' } },
      { kind: 'message', msg: { id: '4', event: undefined, data: '{"k":1}' } },
    ]);
  });
});

describe('followEvents', () => {
  it('a stream killed mid-way resumes with Last-Event-ID: a contiguous revision sequence, no repeats', async () => {
    const LAST = 30;
    const conns: Connection[] = [];
    const s = await httpsServer(cert, (req, res) => {
      const u = new URL(req.url!, 'http://x');
      const c: Connection = { lastEventId: req.headers['last-event-id'] as string | undefined, since: u.searchParams.get('since') ?? undefined, topic: u.searchParams.get('topic') ?? undefined };
      conns.push(c);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      const from = Number(c.lastEventId ?? c.since ?? 0);
      // after a reconnect the server repeats the last revision the client saw: it must be dropped
      let rev = conns.length > 1 ? from : from + 1;
      const killAt = conns.length === 1 ? 7 : conns.length === 2 ? 18 : Infinity;
      const t = setInterval(() => {
        if (rev > LAST) {
          res.write(': heartbeat\n\n');
          return;
        }
        if (rev === killAt) {
          // half a frame, then the connection dies
          res.write(`id: ${rev}\ndata: {"topic":"task"`);
          clearInterval(t);
          setTimeout(() => req.socket.destroy(), 10);
          return;
        }
        res.write(frame(rev, { topic: 'task', kind: 'task-started', message: `event ${rev}` }));
        rev++;
      }, 5);
      res.on('close', () => clearInterval(t));
    });
    running.push(s);
    const client = new ApiClient({ endpoints: [s.url], fingerprints: [cert.fingerprint], timeoutMs: 2000 });
    const got: StreamEvent[] = [];
    const ac = new AbortController();
    const reconnects: number[] = [];
    const result = await followEvents(client, {
      since: 2,
      topics: ['task', 'plan'],
      signal: ac.signal,
      minBackoffMs: 20,
      maxBackoffMs: 100,
      onReconnect: (r) => reconnects.push(r.delayMs),
      onEvent: (e) => {
        got.push(e);
        if (e.revision === LAST) ac.abort();
      },
    });
    const revs = got.map((e) => e.revision);
    expect(revs).toEqual(Array.from({ length: LAST - 2 }, (_, i) => i + 3));
    expect(got[0]).toMatchObject({ type: 'message', data: { topic: 'task', message: 'event 3' } });
    expect(result.revision).toBe(LAST);
    expect(conns.length).toBe(3);
    expect(conns[0]).toMatchObject({ lastEventId: '2', since: '2', topic: 'task,plan' });
    expect(conns[1]!.lastEventId).toBe('6');
    expect(conns[2]!.lastEventId).toBe('17');
    expect(reconnects.every((d) => d <= 100)).toBe(true);
  });

  it('a reset event is reported and the stream continues after its revision', async () => {
    const s = await unixServer(dir, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(frame(60, { oldest: 41, revision: 60 }, 'reset'));
      for (const r of [61, 62, 63]) res.write(frame(r, { topic: 'plan', message: `m${r}` }));
      res.write(': heartbeat\n\n');
    }, 'reset.sock');
    running.push(s);
    const client = new ApiClient({ endpoints: [s.url] });
    const resets: unknown[] = [];
    const revs: number[] = [];
    const ac = new AbortController();
    await followEvents(client, {
      since: 1,
      signal: ac.signal,
      onReset: (r) => void resets.push(r),
      onEvent: (e) => {
        revs.push(e.revision);
        if (e.revision === 63) ac.abort();
      },
    });
    expect(resets).toEqual([{ revision: 60, data: { oldest: 41, revision: 60 } }]);
    expect(revs).toEqual([61, 62, 63]);
  });

  it('a silent stream (no heartbeat) is dropped after the idle timeout and resumed', async () => {
    const conns: Connection[] = [];
    const s = await unixServer(dir, (req, res) => {
      conns.push({ lastEventId: req.headers['last-event-id'] as string | undefined });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (conns.length === 1) res.write(frame(5, { message: 'five' })); // then silence
      else res.write(frame(6, { message: 'six' }));
    }, 'idle.sock');
    running.push(s);
    const client = new ApiClient({ endpoints: [s.url], timeoutMs: 1000 });
    const revs: number[] = [];
    const ac = new AbortController();
    const t0 = Date.now();
    await followEvents(client, {
      idleTimeoutMs: 300,
      minBackoffMs: 10,
      signal: ac.signal,
      onEvent: (e) => {
        revs.push(e.revision);
        if (e.revision === 6) ac.abort();
      },
    });
    expect(revs).toEqual([5, 6]);
    expect(conns[1]!.lastEventId).toBe('5');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  it('without follow it stops once caught up: at the end of the stream or the first heartbeat', async () => {
    const seen: Connection[] = [];
    const s = await unixServer(dir, (req, res) => {
      const u = new URL(req.url!, 'http://x');
      seen.push({ follow: u.searchParams.get('follow') ?? undefined });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(frame(1, { message: 'a' }) + frame(2, { message: 'b' }));
      res.write(': heartbeat\n\n'); // and the connection stays open
    }, 'catchup.sock');
    running.push(s);
    const client = new ApiClient({ endpoints: [s.url] });
    const revs: number[] = [];
    const r = await followEvents(client, { follow: false, onEvent: (e) => void revs.push(e.revision) });
    expect(revs).toEqual([1, 2]);
    expect(r.revision).toBe(2);
    expect(seen[0]!.follow).toBe('false');
  });

  it('an error thrown by onEvent ends the stream with that error, without a reconnect', async () => {
    let n = 0;
    const s = await unixServer(dir, (req, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(frame(1, { message: 'a' }));
    }, 'throw.sock');
    running.push(s);
    const boom = new Error('boom');
    await expect(
      followEvents(new ApiClient({ endpoints: [s.url] }), {
        minBackoffMs: 10,
        onEvent: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(n).toBe(1);
  });

  it('a refused token is not retried; a host never reached is reported', async () => {
    let n = 0;
    const s = await unixServer(dir, (req, res) => {
      n++;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'E_UNAUTHORIZED', message: 'bad token' } }));
    }, 'auth.sock');
    running.push(s);
    await expect(followEvents(new ApiClient({ endpoints: [s.url] }), { onEvent: () => undefined, minBackoffMs: 10 })).rejects.toMatchObject({ code: 'E_UNAUTHORIZED' });
    expect(n).toBe(1);
    await expect(followEvents(new ApiClient({ endpoints: [`unix:${path.join(dir, 'nobody.sock')}`] }), { onEvent: () => undefined })).rejects.toThrow(/no such socket/);
  });
});
