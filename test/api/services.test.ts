/** services.ts over the control operations: an offline diff of sent plans and a cached status, no agents asked. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createControlServices } from '../../src/api/services.js';
import { loadPlanText } from '../../src/spec/load.js';
import { planText } from './helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-services-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('diffs sent plan texts offline without writing them anywhere', async () => {
  const inventory = path.join(dir, 'inventory.yaml');
  fs.writeFileSync(inventory, 'idcs:\n  - name: dc\n    clusters:\n      - name: c1\n        agents:\n          - name: h1\n            ssh: {host: 127.0.9.9}\n            resources: {cpus: 4, mem: 4Gi, disk: 10Gi}\n');
  const services = createControlServices({ stateDir: path.join(dir, 'state'), inventoryPath: inventory });
  const text = planText('web', 'alpha');
  const ctx = { by: 'test', requestId: 'r1' };
  const diff = await services.diffPlans({ plans: [loadPlanText(text, 'team/web.yaml')], texts: [{ file: 'team/web.yaml', text }], offline: true }, ctx);
  expect(diff.changes.create).toBe(1);
  expect(diff.placements.map((p) => `${p.task}@${p.agent}`)).toEqual(['web/web/0@h1']);
  // the plans travel parsed: nothing is written under the state for them
  expect(fs.existsSync(path.join(dir, 'state', 'api-plans'))).toBe(false);
  expect(diff.plans).toEqual([{ name: 'web', project: 'alpha', file: 'team/web.yaml' }]);
  const st = await services.status({ cached: true }, ctx);
  expect(st.tasks).toEqual([]);
});
