/** StateStore.id: made once for a state without one, kept across reloads, written with the next save. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STATE_ID_RE } from '../../src/state/state-id.js';
import { StateStore } from '../../src/state/store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('StateStore.id', () => {
  it('a new state gets an id that survives a reload before the first save and is saved with it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-state-id-'));
    dirs.push(dir);
    const s1 = await StateStore.open(dir);
    const id = s1.id;
    expect(id).toMatch(STATE_ID_RE);
    await s1.withLock(async () => {
      expect(s1.id).toBe(id); // lock re-reads the (still missing) file
      await s1.save();
    });
    const s2 = await StateStore.open(dir);
    expect(s2.id).toBe(id);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-state-id-'));
    dirs.push(other);
    expect((await StateStore.open(other)).id).not.toBe(id);
  });
});
