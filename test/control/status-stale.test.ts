/**
 * status() hands on what the state says of its freshness: `stale` (since, reason) when the store did
 * not answer, absent otherwise (a file or memory state never has it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adoptState, closeStates } from '../../src/control/state-handle.js';
import { status } from '../../src/control/status.js';
import type { StateStaleness } from '../../src/state/backend.js';
import { MemoryBackend } from '../../src/state/memory-backend.js';

/** StaleBackend is a memory state whose store, it says, stopped answering. */
class StaleBackend extends MemoryBackend {
  stale?: StateStaleness;
  staleness(): StateStaleness | undefined {
    return this.stale;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-status-stale-'));
const inventory = path.join(dir, 'inventory.yaml');
fs.writeFileSync(inventory, 'idcs:\n  - name: dc\n    clusters:\n      - name: c1\n        agents:\n          - name: h1\n            ssh: {host: 127.0.9.9}\n            resources: {cpus: 4, mem: 4Gi, disk: 10Gi}\n');

afterAll(async () => {
  await closeStates();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('status and a stale state', () => {
  it('says stale with its reason while the store does not answer, and nothing once it does', async () => {
    const state = new StaleBackend();
    adoptState(path.join(dir, 'state'), state);
    const fresh = await status({ stateDir: path.join(dir, 'state'), inventoryPath: inventory, cached: true });
    expect(fresh).not.toHaveProperty('stale');
    state.stale = { since: '2026-01-02T03:04:05.000Z', reason: 'etcd did not answer a read (members a:1): no leader; this is the state as this host last saw it (revision 0)' };
    const r = await status({ stateDir: path.join(dir, 'state'), inventoryPath: inventory, cached: true });
    expect(r.stale).toEqual(state.stale);
    expect(r.agents.map((a) => a.name)).toEqual(['h1']);
  });
});
