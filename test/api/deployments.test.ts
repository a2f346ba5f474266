/**
 * /v1/deployments/ID/pause|resume|abort|revert over the real control services and a state directory:
 * the transitions written with their events (by the token), the refusals (404, 409 with their
 * codes), and a project's token kept to its project's deployments.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { ApiMetrics } from '../../src/api/metrics.js';
import { createControlServices } from '../../src/api/services.js';
import { TokenStore } from '../../src/api/tokens.js';
import { closeStates, stateOf, withStateWork } from '../../src/control/state-handle.js';
import { specHashOf } from '../../src/control/desired.js';
import type { DeploymentRecord } from '../../src/deploy/types.js';
import { loadPlanText } from '../../src/spec/load.js';
import { DEFAULT_UPDATE } from '../../src/spec/update.js';
import { planText } from './helpers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-api-deploy-'));
let n = 0;
let app: FastifyInstance;
let dir: string;
const tok: Record<string, string> = {};
afterAll(async () => {
  await app?.close();
  await closeStates();
  fs.rmSync(root, { recursive: true, force: true });
});

const auth = (t: string) => ({ authorization: `Bearer ${t}` });
const idOf = (t: string) => t.split('_').slice(0, 2).join('_');

/** seed records plan `name` of `project` at v2 and a deployment of its group web from v1 to v2. */
async function seed(name: string, project: string, id: string, over: Partial<DeploymentRecord> = {}): Promise<DeploymentRecord> {
  const plan = loadPlanText(planText(name, project), `${name}.yaml`);
  const v2 = { ...plan.groups[0]!, command: ['sleep', '1002'] };
  const v1 = { ...plan.groups[0]!, command: ['sleep', '1001'] };
  const spec = { ...plan, groups: [v2] };
  const at = new Date(Date.now() - 60_000).toISOString();
  const d: DeploymentRecord = {
    id, plan: name, group: 'web', project, fromHash: specHashOf(spec, v1), toHash: specHashOf(spec, v2), fromSpec: v1, toSpec: v2,
    policy: { ...DEFAULT_UPDATE }, status: 'running', promoted: true, tasks: [], old: 1, createdAt: at, updatedAt: at, progressAt: at, ...over,
  };
  await withStateWork(dir, { purpose: 'test' }, 'test', async (work) => {
    work.plans.put({ name, project, file: `${name}.yaml`, appliedAt: at, spec });
    work.deployments.put(d);
  });
  return d;
}

beforeEach(async () => {
  await app?.close();
  dir = path.join(root, `s${n++}`);
  const backend = await stateOf(dir);
  const tokens = new TokenStore(backend);
  app = await buildApp({ backend, services: createControlServices({ stateDir: dir }), tokens, metrics: new ApiMetrics(backend), bodyLimit: 64 * 1024, keepAliveMs: 20, log: () => undefined });
  tok.admin = (await tokens.create({ scope: 'admin', by: 'test' })).token;
  tok.alphaWrite = (await tokens.create({ scope: 'write', project: 'alpha', by: 'test' })).token;
  tok.alphaRead = (await tokens.create({ scope: 'read', project: 'alpha', by: 'test' })).token;
});

const post = (id: string, action: string, token: string) => app.inject({ method: 'POST', url: `/v1/deployments/${id}/${action}`, headers: auth(token), payload: {} });

describe('deployment operations', () => {
  it('pause, then resume (progressAt reset), each an event by the token; wrong transitions are 409 E_DEPLOYMENT_STATE', async () => {
    const d = await seed('web', 'alpha', 'dep-00000000a1');
    const paused = await post(d.id, 'pause', tok.alphaWrite!);
    expect(paused.statusCode).toBe(200);
    expect(paused.json().deployment).toMatchObject({ id: d.id, status: 'paused' });
    const again = await post(d.id, 'pause', tok.alphaWrite!);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('E_DEPLOYMENT_STATE');
    const before = Date.now();
    const resumed = await post('00000000a1', 'resume', tok.alphaWrite!);
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json().deployment.status).toBe('running');
    expect(Date.parse(resumed.json().deployment.progressAt)).toBeGreaterThanOrEqual(before);
    const running = await post(d.id, 'resume', tok.alphaWrite!);
    expect(running.statusCode).toBe(409);
    expect(running.json().error.code).toBe('E_DEPLOYMENT_STATE');
    const detail = (await app.inject({ url: `/v1/deployments/${d.id}`, headers: auth(tok.alphaRead!) })).json();
    const kinds = detail.events.filter((e: { kind: string }) => !e.kind.endsWith('-requested') && !e.kind.endsWith('-failed'));
    expect(kinds.map((e: { kind: string; by: string }) => `${e.kind} ${e.by}`)).toEqual([`deployment-paused ${idOf(tok.alphaWrite!)}`, `deployment-resumed ${idOf(tok.alphaWrite!)}`]);
  });

  it('abort ends it aborted; then every action is 409 E_DEPLOYMENT_FINISHED', async () => {
    const d = await seed('web', 'alpha', 'dep-00000000b2');
    const r = await post(d.id, 'abort', tok.admin!);
    expect(r.statusCode).toBe(200);
    expect(r.json().deployment).toMatchObject({ status: 'aborted' });
    expect(r.json().deployment.finishedAt).toBeDefined();
    for (const action of ['pause', 'resume', 'abort', 'revert']) {
      const late = await post(d.id, action, tok.admin!);
      expect(late.statusCode, action).toBe(409);
      expect(late.json().error.code, action).toBe('E_DEPLOYMENT_FINISHED');
    }
  });

  it('revert ends it reverted, records the old spec as the plan\'s and starts the deployment back (revertOf)', async () => {
    const d = await seed('web', 'alpha', 'dep-00000000c3', { status: 'paused' });
    const r = await post(d.id, 'revert', tok.alphaWrite!);
    expect(r.statusCode).toBe(200);
    const reverted = r.json().deployment as DeploymentRecord;
    expect(reverted).toMatchObject({ id: d.id, status: 'reverted' });
    const view = (await stateOf(dir)).view();
    const back = view.get('deployments', reverted.revertedBy!)!;
    expect(back).toMatchObject({ status: 'running', revertOf: d.id, toHash: d.fromHash, fromHash: d.toHash, by: idOf(tok.alphaWrite!) });
    expect(back.policy).toMatchObject({ canary: 0, autoRevert: false });
    expect(view.get('plans', 'web')!.spec!.groups[0]!.command).toEqual(['sleep', '1001']);
    const listed = (await app.inject({ url: '/v1/deployments', headers: auth(tok.alphaRead!) })).json().deployments.map((x: DeploymentRecord) => `${x.id} ${x.status}`);
    expect(listed).toEqual([`${back.id} running`, `${d.id} reverted`]);
  });

  it('revert without a previous spec is 409 E_DEPLOYMENT_NO_PREVIOUS, and changes nothing', async () => {
    const d = await seed('web', 'alpha', 'dep-00000000d4', { fromSpec: undefined });
    const r = await post(d.id, 'revert', tok.admin!);
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('E_DEPLOYMENT_NO_PREVIOUS');
    expect((await stateOf(dir)).view().get('deployments', d.id)!.status).toBe('running');
  });

  it('an unknown id is 404 E_DEPLOYMENT_UNKNOWN; a project token is refused another project\'s deployment (404) and cannot act on it', async () => {
    const beta = await seed('db', 'beta', 'dep-00000000e5');
    const unknown = await post('dep-00000000ff', 'pause', tok.admin!);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('E_DEPLOYMENT_UNKNOWN');
    for (const action of ['pause', 'resume', 'abort', 'revert']) {
      const r = await post(beta.id, action, tok.alphaWrite!);
      expect(r.statusCode, action).toBe(404);
      expect(r.json().error.code, action).toBe('E_DEPLOYMENT_UNKNOWN');
    }
    expect((await app.inject({ url: `/v1/deployments/${beta.id}`, headers: auth(tok.alphaRead!) })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/deployments', headers: auth(tok.alphaRead!) })).json().deployments).toEqual([]);
    expect((await stateOf(dir)).view().get('deployments', beta.id)!.status).toBe('running');
    // a read token may look but not act
    expect((await post(beta.id, 'pause', tok.alphaRead!)).statusCode).toBe(403);
    // the admin (no project) acts on it
    expect((await post(beta.id, 'pause', tok.admin!)).json().deployment.status).toBe('paused');
  });
});
