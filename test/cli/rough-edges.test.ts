/** Rough edges found trying factory as a new user would, each with the fix's test. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstLine } from '../../src/cli/render-status.js';
import { SpecError, StateError } from '../../src/errors.js';
import { loadPlanText } from '../../src/spec/load.js';
import { FileBackend } from '../../src/state/file-backend.js';

describe('rough edges', () => {
  it('a NUL byte in a command is refused when the plan is read, with its position, not at start', () => {
    let err: unknown;
    try {
      loadPlanText('name: nul\nprocesses:\n  - name: x\n    command: ["echo", "a\\u0000b"]\n', 'nul.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toMatch(/nul\.yaml:4:\d+: .*NUL byte/);
  });

  it('a multi-line error keeps one line in the status table', () => {
    expect(firstLine('Error: boom\n    at x (y.js:1:2)')).toBe('Error: boom …');
    expect(firstLine('one line')).toBe('one line');
    expect(firstLine(undefined)).toBe('');
  });

  it('--state naming a file says so (it said "EEXIST … mkdir")', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'factory-rough-'));
    try {
      const file = path.join(dir, 'state.json');
      writeFileSync(file, '{}');
      const err = await FileBackend.open(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).message).toBe(`state directory ${file} is a file, not a directory`);
      expect((err as StateError).code).toBe('E_STATE_DIR');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an inventory given as a plan', () => {
  it('is named as an inventory, with the flag to pass it with', () => {
    let err: unknown;
    try {
      loadPlanText('idcs:\n  - name: dc\n    clusters: []\n', 'examples/inventory.example.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toMatch(/^examples\/inventory\.example\.yaml:1:1: this file is an inventory \(it has idcs:\), not a plan: pass it with --inventory/);
  });
});
