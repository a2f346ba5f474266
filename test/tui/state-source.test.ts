/**
 * StateFileWatcher on a real state folder: its snapshots carry the jobs and their runs from the
 * state's job tables (read in the state worker), and a new version of the file shows a run's end.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { StateFileWatcher } from '../../src/tui/state-source.js';
import { waitFor } from '../helpers/cli.js';
import { sampleStateWithJobs } from './fixtures.js';

const dirs: string[] = [];
const watchers: StateFileWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** writeState replaces state.json atomically, as the store does. */
function writeState(dir: string, doc: unknown): void {
  writeFileSync(path.join(dir, 'state.json.tmp'), JSON.stringify(doc));
  renameSync(path.join(dir, 'state.json.tmp'), path.join(dir, 'state.json'));
}

describe('StateFileWatcher', () => {
  test('publishes the jobs and runs of the state file, and follows a run that ends', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'factory-watch-jobs-'));
    dirs.push(dir);
    const doc = sampleStateWithJobs();
    writeState(dir, doc);
    const w = await StateFileWatcher.open(dir, { debounceMs: 20, pollMs: 100 });
    watchers.push(w);
    const first = w.current();
    expect(first.core?.taskCount).toBe(6);
    expect(first.jobs?.jobs.map((j) => `${j.id}:${j.running}`)).toEqual(['etl/nightly:0', 'etl/report:0', 'web/backup:0', 'web/tick:1']);
    expect(first.jobs?.runs['etl/nightly']?.map((r) => r.state)).toEqual(['failed', 'succeeded', 'missed']);

    const id = 'web/tick/2026-01-01T00:00:29.000Z';
    writeState(dir, { ...doc, runs: { ...doc.runs, [id]: { ...doc.runs![id]!, state: 'succeeded', exitCode: 0 } } });
    expect(await waitFor(() => w.current().jobs?.jobs.find((j) => j.id === 'web/tick')?.running === 0, 5_000, 20), JSON.stringify(w.current().jobs?.jobs)).toBe(true);
    expect(w.current().jobs?.runs['web/tick']?.[0]).toMatchObject({ state: 'succeeded', exitCode: 0 });
  });
});
