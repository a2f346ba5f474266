/** The shared StateBackend suite against the file backend: each test gets a fresh state directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { describeBackendContract } from './backend-contract.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describeBackendContract('file', () => ({
  location: () => {
    const d = mkdtempSync(path.join(tmpdir(), 'factory-contract-'));
    dirs.push(d);
    return d;
  },
}));
