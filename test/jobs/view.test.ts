/** jobViewsOf: a job with its cursor and its runs going, as `jobs list`, the API and the dashboard show it. */
import { describe, expect, test } from 'vitest';
import type { JobCursor, JobRecord, RunRecord, RunState } from '../../src/jobs/types.js';
import { jobRecord } from './specs.js';
import { jobViewsOf } from '../../src/jobs/view.js';

const job = (id: string, over: Partial<JobRecord> = {}, spec: Partial<JobRecord['spec']> = {}): JobRecord =>
  jobRecord(id, { schedule: '0 2 * * *', resources: { cpus: 0.1, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, ...spec }, { project: 'acme', ...over }, '2026-12-01T00:00:00.000Z');
const run = (j: string, slot: string, state: RunState): RunRecord => ({ id: `${j}/${slot}`, job: j, plan: j.split('/')[0]!, project: 'acme', slot, trigger: 'schedule', state, attempt: 1, claimedAt: slot, attempts: [] });
const cursor = (id: string, next: string): JobCursor => ({ id, cursor: '2026-12-02T02:00:00.000Z', next, counts: { runs: 4, succeeded: 2, failed: 1, missed: 1, skipped: 0 } });

describe('jobViewsOf', () => {
  test('by id, each with its cursor, its runs going counted, suspended ones without a next slot', () => {
    const jobs = [job('web/nightly'), job('db/vacuum', { suspended: true }), job('etl/load', {}, { schedule: undefined, after: ['extract'] }), job('etl/paused', {}, { suspend: true })];
    const cursors = new Map([
      ['web/nightly', cursor('web/nightly', '2026-12-03T02:00:00.000Z')],
      ['db/vacuum', cursor('db/vacuum', '2026-12-03T02:00:00.000Z')],
      ['etl/paused', cursor('etl/paused', '2026-12-03T02:00:00.000Z')],
    ]);
    const runs = [
      run('web/nightly', '2026-12-01T02:00:00.000Z', 'succeeded'),
      run('web/nightly', '2026-12-02T02:00:00.000Z', 'running'),
      run('web/nightly', '2026-12-02T03:00:00.000Z', 'waiting'),
      run('db/vacuum', '2026-12-02T02:00:00.000Z', 'claimed'),
      run('db/vacuum', '2026-12-01T02:00:00.000Z', 'missed'),
    ];
    const views = jobViewsOf(jobs, (id) => cursors.get(id), runs);
    expect(views.map((v) => v.id)).toEqual(['db/vacuum', 'etl/load', 'etl/paused', 'web/nightly']);
    expect(views[3]).toMatchObject({ schedule: '0 2 * * *', timeZone: 'UTC', suspended: false, next: '2026-12-03T02:00:00.000Z', running: 2, counts: { runs: 4, failed: 1, missed: 1 } });
    expect(views[0]).toMatchObject({ suspended: true, running: 1 });
    expect(views[0]!.next).toBeUndefined();
    expect(views[2]).toMatchObject({ suspended: true, running: 0 });
    expect(views[2]!.next).toBeUndefined();
    expect(views[1]).toEqual({ id: 'etl/load', plan: 'etl', name: 'load', project: 'acme', timeZone: 'UTC', after: ['extract'], concurrency: 'allow', suspended: false, running: 0, counts: { runs: 0, succeeded: 0, failed: 0, missed: 0, skipped: 0 } });
  });
});
