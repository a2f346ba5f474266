/**
 * The local dashboard's job actions (controlActions): suspend and resume written to the state
 * directory as `jobs suspend|resume` do; a run now sent to the control host serving the state, and
 * refused with the way to start one when none does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { closeStates, stateOf } from '../../src/control/state-handle.js';
import { controlActions } from '../../src/tui/actions.js';
import { JOB_TABLES } from '../../src/tui/jobs-model.js';
import { jobRun, sampleJobTables } from './fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  await closeStates();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** stateWithJobs is a state directory holding the tests' job tables. */
async function stateWithJobs(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'factory-tui-actions-'));
  dirs.push(dir);
  const state = await stateOf(dir);
  const tables = sampleJobTables();
  await state.lock({ purpose: 'test' });
  try {
    await state.commit({ ops: JOB_TABLES.flatMap((t) => Object.entries(tables[t]!).map(([key, value]) => ({ table: t, key, value }) as never)) });
  } finally {
    await state.unlock();
  }
  return dir;
}

describe('controlActions: jobs', () => {
  test('suspend and resume are recorded on the job, with an event, and say what they did', async () => {
    const dir = await stateWithJobs();
    const actions = controlActions({ stateDir: dir });
    expect(await actions.suspendJob('etl/nightly', true)).toBe('etl/nightly suspended');
    expect(await actions.suspendJob('web/backup', false)).toBe('web/backup resumed; next slot 2026-01-01T00:15:00.000Z');
    const view = (await stateOf(dir)).view();
    expect(view.get('jobs', 'etl/nightly')?.suspended).toBe(true);
    expect(view.get('jobs', 'web/backup')?.suspended).toBe(false);
    const kinds = (await stateOf(dir)).eventsSince(0).events.map((e) => `${e.kind} ${e.job}`);
    expect(kinds).toEqual(['job-suspended etl/nightly', 'job-resumed web/backup']);
  });

  test('run now goes to the control host serving the state; without one it says how to start one', async () => {
    const dir = await stateWithJobs();
    await expect(controlActions({ stateDir: dir }).runJob('etl/nightly')).rejects.toThrow(`jobs run on a control host, and none serves this state (start one: factory control serve --state ${dir})`);
    await expect(controlActions({ stateDir: dir, host: async () => undefined }).runJob('etl/nightly')).rejects.toThrow(/none serves this state/);
    const runJob = vi.fn(async (job: string) => jobRun(job, '2026-01-01T00:00:31.000Z', { state: 'claimed', trigger: 'manual', agent: 'h1' }));
    expect(await controlActions({ stateDir: dir, host: async () => ({ runJob }) }).runJob('etl/nightly')).toBe('etl/nightly/2026-01-01T00:00:31.000Z: started on h1');
    expect(runJob).toHaveBeenCalledWith('etl/nightly', false);
  });
});
