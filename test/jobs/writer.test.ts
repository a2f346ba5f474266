import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobRecord, RunRecord } from '../../src/jobs/types.js';
import { RunWriter, type CursorMove } from '../../src/jobs/writer.js';
import { FileBackend } from '../../src/state/file-backend.js';
import type { StateTxn } from '../../src/state/backend.js';
import { StateWork } from '../../src/state/work.js';
import { jobRecord } from './specs.js';

let dir: string;
let state: FileBackend;
const T0 = '2026-12-01T00:00:00.000Z';
const job: JobRecord = jobRecord('p/x', {}, {}, T0);
const SLOT = '2026-12-01T00:00:01.000Z';
const run: RunRecord = { id: `p/x/${SLOT}`, job: 'p/x', plan: 'p', project: 'default', slot: SLOT, trigger: 'schedule', state: 'claimed', attempt: 1, claimedAt: SLOT, attempts: [] };
const move: CursorMove = { job, to: { cursor: '2026-12-01T00:00:01.100Z', next: '2026-12-01T00:00:02.000Z' }, add: { runs: 1, missed: 2, skipped: 0 } };

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'factory-writer-'));
  state = await FileBackend.open(dir);
});
afterEach(async () => {
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

/** putRunBehind records a run the writer does not know of (another writer's), so a claim of it fails its guard. */
async function putRunBehind(r: RunRecord): Promise<void> {
  await state.lock();
  try {
    const w = new StateWork(state);
    w.runs.put(r);
    await w.flush();
  } finally {
    await state.unlock();
  }
}

describe('RunWriter claims', () => {
  it('apply their cursor moves to the cursor as it is when written, keeping a run that ended while the claim waited', async () => {
    const w = new RunWriter(state, () => undefined);
    w.load();
    // the pass read the cursor; a run ends (the watcher) before the claim is written
    w.putCursor({ ...w.cursorOf(job), counts: { runs: 1, succeeded: 1, failed: 0, missed: 0, skipped: 0 }, lastSuccessAt: T0 });
    await w.claim([run], [move], []);
    await w.flush();
    expect(state.view().get('cursors', 'p/x')).toMatchObject({ cursor: move.to!.cursor, next: move.to!.next, counts: { runs: 2, succeeded: 1, missed: 2, skipped: 0 }, lastSuccessAt: T0 });
  });

  it('a claim that fails undoes its move only: what changed on the cursor meanwhile stays, and is written', async () => {
    const w = new RunWriter(state, () => undefined);
    w.load();
    w.putCursor({ ...w.cursorOf(job), counts: { runs: 3, succeeded: 2, failed: 0, missed: 1, skipped: 0 } });
    await w.flush();
    const before = w.cursorOf(job);
    await putRunBehind(run);
    // while the claim's commit is under way, a run ends and builds on the moved cursor
    const commit = state.commit.bind(state);
    state.commit = (txn: StateTxn) => {
      if (txn.guards?.length) w.putCursor({ ...w.cursorOf(job), counts: { ...w.cursorOf(job).counts, succeeded: 3 }, lastSuccessAt: SLOT });
      return commit(txn);
    };
    await expect(w.claim([run], [move], [])).rejects.toThrow();
    await w.flush();
    const after = { ...before, counts: { ...before.counts, succeeded: 3 }, lastSuccessAt: SLOT };
    expect(w.cursorOf(job)).toEqual(after);
    expect(state.view().get('cursors', 'p/x')).toEqual(after);
    expect(w.run(run.id)).toBeUndefined();
  });
});

const mkRun = (job: string, slot: number, over: Partial<RunRecord> = {}): RunRecord => {
  const at = new Date(Date.UTC(2026, 11, 1, 0, 0, slot)).toISOString();
  return { id: `p/${job}/${at}`, job: `p/${job}`, plan: 'p', project: 'default', slot: at, trigger: 'schedule', state: 'claimed', attempt: 1, claimedAt: at, attempts: [], ...over };
};

describe('RunWriter', () => {
  it('commits one at a time: a change recorded while a claim commits waits for it, and flush waits for both', async () => {
    // count the writer's commits in flight at the backend
    let inFlight = 0;
    let most = 0;
    const commit = state.commit.bind(state);
    const w = new RunWriter(state, () => undefined);
    w.load();
    const first = mkRun('a', 1);
    state.commit = async (txn: StateTxn) => {
      most = Math.max(most, ++inFlight);
      // a start answered while the claim is being written: recorded (coalesced) at once
      if (txn.guards?.length) w.putRun({ ...first, state: 'running', pid: 42 });
      try {
        return await commit(txn);
      } finally {
        inFlight -= 1;
      }
    };
    for (let i = 0; i < 5; i++) {
      await w.claim([mkRun('b', 10 + i)], [], []);
      await new Promise((r) => setImmediate(r));
    }
    await w.flush();
    expect(most).toBe(1);
    expect(state.view().get('runs', first.id)).toMatchObject({ state: 'running', pid: 42 });
    expect(state.view().list('runs')).toHaveLength(6);
  });

  it('keeps each job\'s runs apart (runsOf), through claims, changes and deletes', async () => {
    const w = new RunWriter(state, () => undefined);
    w.load();
    await w.claim([mkRun('a', 1), mkRun('a', 2), mkRun('b', 1)], [], []);
    w.putRun({ ...mkRun('a', 2), state: 'running' });
    w.deleteRun(mkRun('a', 1).id);
    expect(w.runsOf('p/a').map((r) => [r.slot.slice(17, 19), r.state])).toEqual([['02', 'running']]);
    expect(w.runsOf('p/b')).toHaveLength(1);
    w.deleteRun(mkRun('b', 1).id);
    expect(w.runsOf('p/b')).toEqual([]);
    await w.flush();
    const again = new RunWriter(state, () => undefined);
    again.load();
    expect(again.runsOf('p/a').map((r) => r.id)).toEqual([mkRun('a', 2).id]);
  });
});
