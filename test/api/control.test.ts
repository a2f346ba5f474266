/**
 * GET /v1/control (the control hosts) and what a follower on etcd answers: 421 E_NOT_LEADER with the
 * leader's URL for anything but a read (nothing runs), and a status that records nothing.
 */
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, type ApiAppOptions } from '../../src/api/app.js';
import { ApiError } from '../../src/api/errors.js';
import { TokenStore } from '../../src/api/tokens.js';
import type { ControlStatus } from '../../src/control/control-status.js';
import { FakeControl, planText, seeded } from './helpers.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(opts: Partial<ApiAppOptions> = {}) {
  const backend = await seeded();
  const control = new FakeControl();
  const tokens = new TokenStore(backend);
  app = await buildApp({ backend, services: control, tokens, ...opts });
  const read = (await tokens.create({ scope: 'read', by: 'test' })).token;
  const write = (await tokens.create({ scope: 'write', by: 'test' })).token;
  return { backend, control, read: { authorization: `Bearer ${read}` }, write: { authorization: `Bearer ${write}` } };
}

describe('GET /v1/control', () => {
  it('a host of a file state answers with itself alone: no etcd, no leader; any token, none refused', async () => {
    const { backend, read } = await start({ health: () => ({ startedAt: '2026-01-01T00:00:00.000Z', listen: '127.0.0.1:8443' }) });
    expect((await app!.inject({ url: '/v1/control' })).statusCode).toBe(401);
    const res = await app!.inject({ url: '/v1/control', headers: read });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json() as ControlStatus;
    expect(s.state).toEqual({ backend: 'file', location: backend.location, id: backend.id, rev: backend.view().rev });
    expect(s.etcd).toBeUndefined();
    expect(s.leader).toBeNull();
    expect(s.source).toBe('host');
    expect(s.self).toMatchObject({ pid: process.pid, host: os.hostname(), role: 'single', url: 'https://127.0.0.1:8443', startedAt: '2026-01-01T00:00:00.000Z', stateRev: backend.view().rev });
    expect(s.hosts).toEqual([{ id: s.self!.id, pid: process.pid, host: os.hostname(), url: 'https://127.0.0.1:8443', startedAt: '2026-01-01T00:00:00.000Z', role: 'single' }]);
  });

  it('a host on etcd answers what its controlStatus reads, as the schema documents it', async () => {
    const answer: ControlStatus = {
      state: { backend: 'etcd', location: 'etcd://127.0.0.1:2379/ha', id: 'st-000000000001', rev: 7 },
      etcd: {
        endpoints: ['127.0.0.1:2379'],
        prefix: '/ha',
        members: [{ id: 'a1', name: 'm0', clientUrls: ['http://127.0.0.1:2379'], peerUrls: ['http://127.0.0.1:2380'], learner: false, healthy: true, leader: true, raftTerm: 2, dbSizeBytes: 20480 }],
        leaderMember: 'm0',
      },
      leader: { epoch: 12, pid: 11, host: 'a', url: 'https://a:1', since: '2026-01-01T00:00:00.000Z', lease: { id: '694d', ttlSec: 2, leftSec: 1 }, heartbeatAt: '2026-01-01T00:00:01.000Z' },
      hosts: [
        { id: 'a-11', pid: 11, host: 'a', url: 'https://a:1', startedAt: 't', role: 'leader', epoch: 12, viewAt: 't', lease: { id: '1', ttlSec: 2, leftSec: 2 } },
        { id: 'b-12', pid: 12, host: 'b', startedAt: 't', role: 'follower', epoch: 12, leader: { epoch: 12, pid: 11, host: 'a', url: 'https://a:1' }, viewAt: 't', lease: { id: '2', expired: true } },
      ],
      self: { id: 'b-12', pid: 12, host: 'b', startedAt: 't', role: 'follower', epoch: 12, stateRev: 7, renewDeadlineMs: 1000, registration: {} },
      source: 'host',
    };
    const { read } = await start({ controlStatus: async () => answer });
    const res = await app!.inject({ url: '/v1/control', headers: read });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual(answer);
  });
});

describe('a follower on etcd', () => {
  const gate = () => new ApiError(421, 'E_NOT_LEADER', 'this control host follows', 'send writes to https://leader:8443', { leader: 'https://leader:8443' });

  it('refuses a write with 421 E_NOT_LEADER naming the leader (through the documented schema), and runs nothing', async () => {
    const { control, write } = await start({ writeGate: gate });
    const res = await app!.inject({ method: 'POST', url: '/v1/plans/apply', headers: write, payload: { plans: [{ file: 'web.yaml', text: planText('web', 'alpha') }] } });
    expect(res.statusCode).toBe(421);
    expect(res.json()).toEqual({ error: { code: 'E_NOT_LEADER', message: 'this control host follows', hint: 'send writes to https://leader:8443', leader: 'https://leader:8443' } });
    expect(control.calls).toEqual([]);
  });

  it('answers reads; a status that asks the agents records nothing there and says why', async () => {
    const { control, read } = await start({ writeGate: gate });
    expect((await app!.inject({ url: '/v1/tasks', headers: read })).statusCode).toBe(200);
    expect((await app!.inject({ url: '/v1/status?cached=true', headers: read })).statusCode).toBe(200);
    expect((await app!.inject({ url: '/v1/status', headers: read })).statusCode).toBe(200);
    expect(control.calls.map((c) => c.arg)).toEqual([
      { cached: true },
      { cached: false, readOnly: 'this control host follows; the leader records what the agents report (https://leader:8443)' },
    ]);
  });

  it('a leader (no gate refusal) records what status sees, as before', async () => {
    const { control, read } = await start({ writeGate: () => undefined });
    expect((await app!.inject({ url: '/v1/status', headers: read })).statusCode).toBe(200);
    expect(control.calls.map((c) => c.arg)).toEqual([{ cached: false }]);
  });
});
