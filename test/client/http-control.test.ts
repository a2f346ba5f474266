/**
 * HttpControl's log streams against the real HTTP API (buildApp over a MemoryBackend, a fake
 * ControlApi behind it, 127.0.0.1 port 0): a task's and a run's output reach onData stream by
 * stream, with the query (follow, tail, stream) the caller asked for, and an aborted call resolves.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import type { OpContext } from '../../src/api/contract.js';
import { TokenStore } from '../../src/api/tokens.js';
import { HttpControl } from '../../src/client/http-control.js';
import { ApiClient } from '../../src/client/http.js';
import { FakeControl, seeded } from '../api/helpers.js';

/** Asked records what each log request reached the control operations with. */
type Asked = { id: string; follow: boolean; tail?: number; stream: string };

/** LogControl is FakeControl that remembers the whole log request. */
class LogControl extends FakeControl {
  asked: Asked[] = [];

  override async logs(req: Parameters<FakeControl['logs']>[0], ctx: OpContext) {
    this.asked.push({ id: req.task, follow: req.follow, tail: req.tail, stream: req.stream });
    await super.logs(req, ctx);
  }

  override async runLogs(req: Parameters<FakeControl['runLogs']>[0] & { follow: boolean; tail?: number; stream: string }, ctx: OpContext) {
    this.asked.push({ id: req.run, follow: req.follow, tail: req.tail, stream: req.stream });
    await super.runLogs(req, ctx);
  }
}

const apps: FastifyInstance[] = [];

afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function serve(): Promise<{ control: HttpControl; fake: LogControl }> {
  const backend = await seeded();
  // the run routes answer for a job the state holds (only its id and project are read)
  await backend.lock();
  await backend.commit({ ops: [{ table: 'jobs', key: 'web/nightly', value: { id: 'web/nightly', plan: 'web', name: 'nightly', project: 'alpha' } as never }] });
  await backend.unlock();
  const fake = new LogControl();
  const app = await buildApp({ backend, services: fake, sseHeartbeatMs: 100, auditEvents: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  apps.push(app);
  const { token } = await new TokenStore(backend).create({ scope: 'admin', by: 'test' });
  const port = (app.server.address() as AddressInfo).port;
  return { control: new HttpControl(new ApiClient({ endpoints: [`http://127.0.0.1:${port}`], token, timeoutMs: 2_000, connectTimeoutMs: 1_000 })), fake };
}

describe('HttpControl log streams', () => {
  it("logs streams a task's output to onData, with the query asked for", async () => {
    const { control, fake } = await serve();
    const got: [string, string][] = [];
    await control.logs({ task: 'web/web/0', follow: false, tail: 5, stream: 'both', onData: (s, c) => got.push([s, c]) });
    expect(got).toEqual([['stdout', 'hello\n'], ['stderr', 'oops\n']]);
    expect(fake.asked).toEqual([{ id: 'web/web/0', follow: false, tail: 5, stream: 'both' }]);
  });

  it("runLogs streams a run's output to onData, a run id going to its own path", async () => {
    const { control, fake } = await serve();
    const got: [string, string][] = [];
    const run = 'web/nightly/2026-12-01T02:00:00.000Z';
    await control.runLogs({ run, follow: true, stream: 'stdout', onData: (s, c) => got.push([s, c]) });
    expect(got).toEqual([['stdout', 'hello\n']]);
    expect(fake.asked).toEqual([{ id: run, follow: true, tail: undefined, stream: 'stdout' }]);
  });

  it('a call whose signal is aborted resolves without output', async () => {
    const { control } = await serve();
    const ac = new AbortController();
    ac.abort();
    const got: string[] = [];
    await expect(control.logs({ task: 'web/web/0', follow: true, stream: 'both', onData: (_s, c) => got.push(c), signal: ac.signal })).resolves.toBeUndefined();
    await expect(control.runLogs({ run: 'web/nightly/2026-12-01T02:00:00.000Z', follow: true, stream: 'both', onData: (_s, c) => got.push(c), signal: ac.signal })).resolves.toBeUndefined();
    expect(got).toEqual([]);
  });
});
