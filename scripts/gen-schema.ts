/**
 * gen-schema writes schema/plan.schema.json and schema/inventory.schema.json from the zod schemas in
 * src/spec/schema.ts. Run with `npm run schema` (or `npx tsx scripts/gen-schema.ts`); a unit test checks
 * the committed files match.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inventoryJsonSchema, planJsonSchema } from '../src/spec/schema.js';

/** renderSchema is the exact text written for a JSON Schema document. */
export function renderSchema(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

/** SCHEMA_FILES maps each generated file (relative to the repository root) to its renderer. */
export const SCHEMA_FILES: Record<string, () => Record<string, unknown>> = {
  'schema/plan.schema.json': planJsonSchema,
  'schema/inventory.schema.json': inventoryJsonSchema,
};

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, render] of Object.entries(SCHEMA_FILES)) {
    writeFileSync(join(root, file), renderSchema(render()));
    process.stderr.write(`wrote ${file}\n`);
  }
}
