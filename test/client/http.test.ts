/**
 * ApiClient against real loopback servers: failover between endpoints, timeouts that name the
 * endpoint, TLS trust by CA and by fingerprint pin, JSON errors, and NDJSON streams.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/client/answers.js';
import { normalizeFingerprint, parseEndpoint } from '../../src/client/endpoint.js';
import { ApiClient } from '../../src/client/http.js';
import { FactoryError, SpecError } from '../../src/errors.js';
import { closedPort, httpsServer, makeCert, silentServer, unixServer, type Running, type TestCert } from './servers.js';

let cert: TestCert;
let other: TestCert;
let dir: string;
const running: Running[] = [];

beforeAll(() => {
  cert = makeCert();
  other = makeCert();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-client-'));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});
afterAll(() => {
  for (const d of [cert.dir, other.dir, dir]) fs.rmSync(d, { recursive: true, force: true });
});

async function start<T extends Running>(p: Promise<T>): Promise<T> {
  const r = await p;
  running.push(r);
  return r;
}

/** answering is a handler that records requests and answers {from: name}. */
function answering(name: string, seen: http.IncomingMessage[]): http.RequestListener {
  return (req, res) => {
    seen.push(req);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ from: name, path: req.url }));
    });
  };
}

describe('endpoints', () => {
  it('parses https, http and unix URLs and refuses others', () => {
    expect(parseEndpoint('https://127.0.0.1:7443')).toMatchObject({ kind: 'https', host: '127.0.0.1', port: 7443 });
    expect(parseEndpoint('unix:/run/x/control.sock')).toMatchObject({ kind: 'unix', path: '/run/x/control.sock' });
    expect(() => parseEndpoint('ftp://x')).toThrow(/scheme/);
    expect(normalizeFingerprint('ab'.repeat(32))).toBe(Array(32).fill('AB').join(':'));
    expect(() => normalizeFingerprint('abc')).toThrow(/64 hex/);
    expect(() => new ApiClient({ endpoints: ['http://10.1.2.3:80'], token: 'fct_0123456789ab_s' })).toThrow(/plain HTTP/);
    expect(() => new ApiClient({ endpoints: ['http://127.0.0.1:80'], token: 'fct_0123456789ab_s' })).not.toThrow();
  });

  it('first of three endpoints down: the second answers, with token, request id and deadline', async () => {
    const seen2: http.IncomingMessage[] = [];
    const seen3: http.IncomingMessage[] = [];
    const down = await closedPort();
    const two = await start(httpsServer(cert, answering('two', seen2)));
    const three = await start(httpsServer(cert, answering('three', seen3)));
    const client = new ApiClient({ endpoints: [`https://127.0.0.1:${down}`, two.url, three.url], fingerprints: [cert.fingerprint], token: 'fct_0123456789ab_secret', timeoutMs: 5000 });
    const before = Date.now();
    const got = await client.getJson<{ from: string }>('/v1/status', { requestId: 'req-1' });
    expect(got.from).toBe('two');
    expect(seen3).toHaveLength(0);
    const h = seen2[0]!.headers;
    expect(h.authorization).toBe('Bearer fct_0123456789ab_secret');
    expect(h['x-request-id']).toBe('req-1');
    const deadline = Number(h['x-factory-deadline']);
    expect(deadline).toBeGreaterThanOrEqual(before + 5000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 5000);
    // the endpoint that answered is where the next call starts
    expect(client.current).toBe(two.url);
    expect((await client.postJson<{ from: string }>('/v1/x', { a: 1 })).from).toBe('two');
  });

  it('a missing unix socket moves on to the next endpoint; all down names each', async () => {
    const seen: http.IncomingMessage[] = [];
    const up = await start(unixServer(dir, answering('unix', seen)));
    const client = new ApiClient({ endpoints: [`unix:${path.join(dir, 'gone.sock')}`, up.url] });
    expect((await client.getJson<{ from: string }>('/v1/status')).from).toBe('unix');
    const down = await closedPort();
    const none = new ApiClient({ endpoints: [`unix:${path.join(dir, 'gone.sock')}`, `https://127.0.0.1:${down}`] });
    const err = await none.getJson('/v1/status').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FactoryError);
    expect((err as FactoryError).message).toContain(`unix:${path.join(dir, 'gone.sock')} (no such socket)`);
    expect((err as FactoryError).message).toContain(`https://127.0.0.1:${down} (connection refused)`);
  });
});

describe('timeouts', () => {
  it('a server that accepts and never answers times out naming the endpoint', async () => {
    const silent = await start(silentServer());
    const client = new ApiClient({ endpoints: [silent.url], fingerprints: [cert.fingerprint], timeoutMs: 700 });
    const t0 = Date.now();
    const err = (await client.getJson('/v1/status').catch((e: unknown) => e)) as FactoryError;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err.message).toMatch(new RegExp(`control host ${silent.url.replace(/\./g, '\\.')} did not answer within 0\\.7 s`));
  });

  it('an HTTPS server that never sends its answer times out naming the endpoint', async () => {
    const hung = await start(httpsServer(cert, () => undefined));
    const client = new ApiClient({ endpoints: [hung.url], fingerprints: [cert.fingerprint], timeoutMs: 1000 });
    const err = (await client.getJson('/v1/status').catch((e: unknown) => e)) as FactoryError;
    expect(err.code).toBe('E_CONTROL_TIMEOUT');
    expect(err.message).toContain(`control host ${hung.url} did not answer within 1 s`);
  });
});

describe('TLS trust', () => {
  it('a fingerprint mismatch is refused naming both fingerprints, and nothing is sent', async () => {
    const seen: http.IncomingMessage[] = [];
    const s = await start(httpsServer(cert, answering('s', seen)));
    const client = new ApiClient({ endpoints: [s.url], fingerprints: [other.fingerprint], token: 'fct_0123456789ab_secret' });
    const err = (await client.getJson('/v1/status').catch((e: unknown) => e)) as FactoryError;
    expect(err.code).toBe('E_CONTROL_TLS_PIN');
    expect(err.message).toContain(cert.fingerprint);
    expect(err.message).toContain(other.fingerprint);
    expect(err.message).toContain(s.url);
    expect(seen).toHaveLength(0);
  });

  it('a pin mismatch is not retried on the next endpoint', async () => {
    const seen: http.IncomingMessage[] = [];
    const s = await start(httpsServer(cert, answering('s', [])));
    const next = await start(unixServer(dir, answering('next', seen), 'next.sock'));
    const client = new ApiClient({ endpoints: [s.url, next.url], fingerprints: [other.fingerprint] });
    await expect(client.getJson('/v1/status')).rejects.toMatchObject({ code: 'E_CONTROL_TLS_PIN' });
    expect(seen).toHaveLength(0);
  });

  it('a CA file is trusted; without it the certificate is refused with a hint', async () => {
    const s = await start(httpsServer(cert, answering('s', [])));
    const trusted = new ApiClient({ endpoints: [s.url], ca: fs.readFileSync(cert.certFile) });
    expect((await trusted.getJson<{ from: string }>('/v1/status')).from).toBe('s');
    const wrongCa = new ApiClient({ endpoints: [s.url], ca: fs.readFileSync(other.certFile) });
    const err = (await wrongCa.getJson('/v1/status').catch((e: unknown) => e)) as FactoryError;
    expect(err.code).toBe('E_CONTROL_TLS');
    expect(err.hint).toMatch(/--ca|--fingerprint/);
    const untrusted = new ApiClient({ endpoints: [s.url] });
    await expect(untrusted.getJson('/v1/status')).rejects.toMatchObject({ code: 'E_CONTROL_TLS' });
  });

  it('NODE_EXTRA_CA_CERTS is honoured, with and without --ca', async () => {
    const s = await start(httpsServer(cert, answering('s', [])));
    const script = `
      import { ApiClient } from ${JSON.stringify(path.resolve('src/client/http.ts'))};
      import fs from 'node:fs';
      const a = await new ApiClient({ endpoints: [${JSON.stringify(s.url)}] }).getJson('/v1/a');
      const b = await new ApiClient({ endpoints: [${JSON.stringify(s.url)}], ca: fs.readFileSync(${JSON.stringify(other.certFile)}) }).getJson('/v1/b');
      console.log(JSON.stringify([a.from, b.from]));
    `;
    // a child: Node reads NODE_EXTRA_CA_CERTS once, when it starts
    // (spawned, not spawnSync: the server runs in this process's event loop)
    const child = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: cert.certFile },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual(['s', 's']);
  }, 30_000);
});

describe('answers', () => {
  it('JSON error bodies become FactoryErrors with the code, message, hint and status', async () => {
    const s = await start(
      unixServer(dir, (req, res) => {
        req.resume();
        if (req.url === '/v1/spec') {
          res.statusCode = 422;
          res.end(JSON.stringify({ error: { code: 'E_SPEC_INVALID', message: 'p.yaml:3:5: bad', issues: [{ file: 'p.yaml', line: 3, col: 5, path: 'x', message: 'bad' }] } }));
          return;
        }
        if (req.url === '/v1/html') {
          res.statusCode = 502;
          res.end('<html>bad gateway</html>');
          return;
        }
        res.statusCode = 409;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: { code: 'E_STATE_LOCKED', message: 'the state is locked by pid 7', hint: 'wait for it' } }));
      }, 'errors.sock'),
    );
    const client = new ApiClient({ endpoints: [s.url] });
    const err = (await client.postJson('/v1/plans/apply', {}).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: 'E_STATE_LOCKED', message: 'the state is locked by pid 7', hint: 'wait for it', exitCode: 1 });
    const spec = await client.getJson('/v1/spec').catch((e: unknown) => e);
    expect(spec).toBeInstanceOf(SpecError);
    expect((spec as SpecError).issues[0]).toMatchObject({ file: 'p.yaml', line: 3 });
    const html = (await client.getJson('/v1/html').catch((e: unknown) => e)) as ApiError;
    expect(html.message).toContain('answered HTTP 502');
    expect(html.code).toBe('E_HTTP_502');
  });

  it('an NDJSON stream with keep-alives outlives the per-call timeout; silence does not', async () => {
    const s = await start(
      httpsServer(cert, (req, res) => {
        req.resume();
        res.setHeader('content-type', 'application/x-ndjson');
        if (req.url === '/v1/silent') {
          res.write(JSON.stringify({ progress: 'starting' }) + '\n');
          return; // then nothing
        }
        let n = 0;
        const t = setInterval(() => {
          n++;
          if (n % 3 === 0) res.write(JSON.stringify({ progress: `step ${n}` }) + '\n');
          else res.write('{}\n');
          if (n === 12) {
            clearInterval(t);
            // the result split over two writes: lines are joined across chunks
            const line = JSON.stringify({ result: { changes: { create: 2 } } }) + '\n';
            res.write(line.slice(0, 7));
            setTimeout(() => res.end(line.slice(7)), 20);
          }
        }, 100);
        res.on('close', () => clearInterval(t));
      }),
    );
    const client = new ApiClient({ endpoints: [s.url], fingerprints: [cert.fingerprint], timeoutMs: 400 });
    const progress: string[] = [];
    const t0 = Date.now();
    const result = await client.stream<{ changes: { create: number } }>('POST', '/v1/plans/apply', { plans: [] }, { onProgress: (p) => progress.push(p) });
    expect(Date.now() - t0).toBeGreaterThan(1000); // three times the call timeout
    expect(result).toEqual({ changes: { create: 2 } });
    expect(progress).toEqual(['step 3', 'step 6', 'step 9', 'step 12'].slice(0, progress.length));
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const err = (await client.stream('POST', '/v1/silent', {}).catch((e: unknown) => e)) as FactoryError;
    expect(err.code).toBe('E_CONTROL_TIMEOUT');
    expect(err.message).toContain(`control host ${s.url} sent nothing for 0.4 s`);
  });

  it('an NDJSON error line rejects with its code; an answer cut short says so', async () => {
    const s = await start(
      unixServer(dir, (req, res) => {
        req.resume();
        res.setHeader('content-type', 'application/x-ndjson');
        res.write(JSON.stringify({ progress: 'one' }) + '\n');
        if (req.url === '/v1/cut') res.end();
        else res.end(JSON.stringify({ error: { code: 'E_AGENT_UNREACHABLE', message: 'agent a1: unreachable', hint: 'check ssh' } }) + '\n');
      }, 'ndjson.sock'),
    );
    const client = new ApiClient({ endpoints: [s.url] });
    await expect(client.stream('POST', '/v1/op', {})).rejects.toMatchObject({ code: 'E_AGENT_UNREACHABLE', message: 'agent a1: unreachable', hint: 'check ssh' });
    await expect(client.stream('POST', '/v1/cut', {})).rejects.toMatchObject({ code: 'E_CONTROL_GONE' });
  });

  it('a call whose signal was aborted before it started rejects with E_ABORTED and sends nothing', async () => {
    const seen: http.IncomingMessage[] = [];
    const s = await start(unixServer(dir, answering('a', seen), 'aborted.sock'));
    const client = new ApiClient({ endpoints: [s.url] });
    const ac = new AbortController();
    ac.abort();
    await expect(client.stream('GET', '/v1/tasks/x/logs', undefined, { signal: ac.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
    await expect(client.getJson('/v1/status', { signal: ac.signal })).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(seen).toEqual([]);
  });
});
