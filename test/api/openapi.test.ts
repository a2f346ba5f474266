/** schema/openapi.json is generated from the route schemas (npm run schema): it must not drift. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { OPENAPI_FILE, renderOpenApi } from '../../scripts/gen-openapi.js';

it('the committed OpenAPI document matches the routes (run npm run schema)', async () => {
  const committed = readFileSync(join(import.meta.dirname, '..', '..', OPENAPI_FILE), 'utf8');
  const fresh = await renderOpenApi();
  expect(committed === fresh, 'schema/openapi.json is stale: run npm run schema and commit it').toBe(true);
  const doc = JSON.parse(fresh);
  for (const p of ['/v1/health', '/v1/control', '/v1/events', '/v1/plans/apply', '/v1/tokens/{id}', '/v1/vms/{task}/{action}']) expect(doc.paths[p], p).toBeDefined();
});

it('documents the control hosts (GET /v1/control) and 421 E_NOT_LEADER with its leader URL on every request but a read', async () => {
  const doc = JSON.parse(await renderOpenApi());
  expect(doc.paths['/v1/control'].get.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ControlStatus' });
  expect(Object.keys(doc.components.schemas.ControlStatus.properties)).toEqual(['state', 'etcd', 'leader', 'hosts', 'self', 'source', 'stale']);
  expect(doc.components.schemas.Error.properties.error.properties.leader.type).toBe('string');
  for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
    for (const [method, op] of Object.entries(ops)) {
      if (method === 'get') expect(op.responses['421'], `${method} ${p}`).toBeUndefined();
      else expect(op.responses['421'], `${method} ${p}`).toEqual({ description: 'Default Response', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
    }
  }
});
