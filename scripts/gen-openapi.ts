/**
 * gen-openapi writes schema/openapi.json from the API's route schemas (src/api/routes/, through
 * @fastify/swagger). Run with `npm run schema`; test/api/openapi.test.ts fails when the committed file
 * drifts from the routes.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/api/app.js';
import type { ControlApi } from '../src/api/contract.js';
import { MemoryBackend } from '../src/state/memory-backend.js';

/** OPENAPI_FILE is the committed document, relative to the repository root. */
export const OPENAPI_FILE = 'schema/openapi.json';

/** renderOpenApi is the exact text of schema/openapi.json. */
export async function renderOpenApi(): Promise<string> {
  const app = await buildApp({ backend: new MemoryBackend({ id: 'st-openapi' }), services: {} as ControlApi });
  try {
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(join(root, OPENAPI_FILE), await renderOpenApi());
  process.stderr.write(`wrote ${OPENAPI_FILE}\n`);
}
