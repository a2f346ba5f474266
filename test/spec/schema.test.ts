import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderSchema, SCHEMA_FILES } from '../../scripts/gen-schema.js';

describe('JSON Schema files', () => {
  it.each(Object.keys(SCHEMA_FILES))('%s matches the zod schema (run `npm run schema` to update)', (file) => {
    const render = SCHEMA_FILES[file];
    expect(render).toBeDefined();
    expect(readFileSync(file, 'utf8')).toBe(renderSchema(render!()));
  });

  it('plan schema describes units with patterns and forbids unknown keys', () => {
    const plan = JSON.parse(readFileSync('schema/plan.schema.json', 'utf8')) as {
      additionalProperties: boolean;
      required: string[];
      $defs: Record<string, { additionalProperties?: unknown }>;
    };
    expect(plan.additionalProperties).toBe(false);
    expect(plan.required).toEqual(['name']);
    expect(JSON.stringify(plan.$defs.TaskResources)).toContain('Ki|Mi|Gi|Ti|Pi');
  });
});
