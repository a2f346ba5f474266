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
  for (const p of ['/v1/health', '/v1/events', '/v1/plans/apply', '/v1/tokens/{id}', '/v1/vms/{task}/{action}']) expect(doc.paths[p], p).toBeDefined();
});
