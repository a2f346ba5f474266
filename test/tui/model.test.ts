import { describe, expect, test } from 'vitest';
import { agentsInScope, buildModel, computeCore, eventsMatching, taskSortKey, taskStateOf, tasksInScope } from '../../src/tui/model.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeEntry, journalName } from '../../src/state/journal.js';
import type { JournalEntry } from '../../src/state/tables.js';
import { jobsMatching, jobsOfTables, runNowOutcome, suspendOutcome } from '../../src/tui/jobs-model.js';
import { coreFromStateBuffer, coreFromStateFile } from '../../src/tui/state-reader.js';
import { MemoryStateSource } from '../../src/tui/state-source.js';
import { deploymentCounts } from '../../src/deploy/describe.js';
import { deploymentsMatching, deploymentsOf, deploymentsTotals, noteOf } from '../../src/tui/deployments-model.js';
import { CRASHY, sampleDeployments, sampleJobTables, sampleState, sampleStateWithDeployments, sampleStateWithJobs } from './fixtures.js';

const GiB = 1024 ** 3;

describe('buildModel', () => {
  const m = buildModel(sampleState(), [{ name: 'h9', idc: 'bj1', cluster: 'bj1-b' }]);

  test('agents: used = sum of live tasks, draining shown, never-observed agents as unknown', () => {
    const h1 = m.agents.find((a) => a.name === 'h1')!;
    // api/0, api/10 and render/0 run on h1; the failed api/2 holds nothing
    expect(h1.used).toEqual({ cpus: 6, mem: 12 * GiB, gpus: 1 });
    expect(h1.tasks).toBe(3);
    expect(m.agents.find((a) => a.name === 'h2')!.state).toBe('draining');
    expect(m.agents.find((a) => a.name === 'h3')!.state).toBe('lost');
    expect(m.agents.find((a) => a.name === 'h9')!.state).toBe('unknown');
    expect(m.agents.map((a) => a.name)).toEqual(['h1', 'h2', 'h9', 'h3']);
  });

  test('overview: IDCs then their clusters, with capacity, use and agents by state', () => {
    expect(m.overview.map((l) => (l.kind === 'idc' ? l.idc : `  ${l.cluster}`))).toEqual(['bj1', '  bj1-a', '  bj1-b', 'sh2', '  sh2-a']);
    const bj1 = m.overview[0]!.summary;
    expect(bj1.agents).toBe(3);
    expect(bj1.byState).toEqual({ ready: 1, draining: 1, unknown: 1 });
    expect(bj1.capacity.cpus).toBe(16);
    expect(bj1.used.cpus).toBe(7);
    expect(m.totals.tasksByState).toEqual({ running: 4, failed: 1, lost: 1 });
  });

  test('tasks sorted by id with numeric indices; events newest first', () => {
    expect(m.tasks.map((t) => t.task)).toEqual(['batch/tick/0', 'farm/render/0', 'web/api/0', 'web/api/1', 'web/api/2', 'web/api/10']);
    expect(m.events[0]!.kind).toBe('agent-lost');
    expect(taskSortKey('a/b/2') < taskSortKey('a/b/10')).toBe(true);
  });

  test('a new state with the same tasks keeps the order and shows the new records', () => {
    const next = sampleState();
    next.tasks['web/api/0']!.state = 'failed';
    const m2 = buildModel(next);
    expect(m2.tasks.map((t) => t.task)).toEqual(m.tasks.map((t) => t.task));
    expect(m2.tasks.find((t) => t.task === 'web/api/0')!.state).toBe('failed');
    next.tasks['web/api/3'] = { ...next.tasks['web/api/0']!, task: 'web/api/3' };
    expect(buildModel(next).tasks.map((t) => t.task)).toContain('web/api/3');
  });
});

describe('filters', () => {
  const m = buildModel(sampleState());
  test('plain words and key:value words must all match', () => {
    expect(tasksInScope(m, {}, 'api').map((t) => t.task)).toEqual(['web/api/0', 'web/api/1', 'web/api/2', 'web/api/10']);
    expect(tasksInScope(m, {}, 'state:failed').map((t) => t.task)).toEqual(['web/api/2']);
    expect(tasksInScope(m, {}, 'driver:libvirt power:run').map((t) => t.task)).toEqual(['farm/render/0']);
    expect(tasksInScope(m, {}, 'health:unhealthy').map((t) => t.task)).toEqual(['web/api/1']);
    expect(tasksInScope(m, { agent: 'h1' }, 'API').map((t) => t.task)).toEqual(['web/api/0', 'web/api/2', 'web/api/10']);
    expect(tasksInScope(m, {}, '')).toBe(m.tasks);
  });
  test('agents by scope and words; events by words', () => {
    expect(agentsInScope(m, { idc: 'bj1', cluster: 'bj1-a' }, '').map((a) => a.name)).toEqual(['h1', 'h2']);
    expect(agentsInScope(m, {}, 'state:lost').map((a) => a.name)).toEqual(['h3']);
    expect(agentsInScope(m, {}, 'rack=r-h2').map((a) => a.name)).toEqual(['h2']);
    expect(eventsMatching(m, 'h3').map((e) => e.kind)).toEqual(['agent-lost']);
  });
});

describe('coreFromStateBuffer', () => {
  const declared = [{ name: 'h9', idc: 'bj1', cluster: 'bj1-b' }];
  test('record by record gives the same model as parsing the whole document, however it is formatted', () => {
    const want = computeCore(sampleState(), declared);
    for (const text of [JSON.stringify(sampleState(), null, 1), JSON.stringify(sampleState()), JSON.stringify(sampleState(), null, '\t') + '\n']) {
      expect(coreFromStateBuffer(Buffer.from(text), declared)).toEqual(want);
    }
    const odd = sampleState();
    odd.tasks['web/api/0']!.error = 'quote " backslash \\ brace } ünïcode';
    expect(coreFromStateBuffer(Buffer.from(JSON.stringify(odd, null, 1)))).toEqual(computeCore(odd));
  });
  test('reads a file in chunks of any size; falls back to parsing the whole text; a missing file is empty', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'factory-reader-'));
    try {
      const file = path.join(dir, 'state.json');
      const odd = sampleState();
      odd.tasks['web/api/0']!.error = 'quote " backslash \\\\ brace } ünïcode';
      writeFileSync(file, JSON.stringify(odd, null, 1));
      const want = computeCore(odd, declared);
      for (const chunk of [1, 7, 64, 1 << 20]) expect(coreFromStateFile(file, declared, chunk)).toEqual(want);
      writeFileSync(file, JSON.stringify({ ...odd, agents: [] }));
      expect(coreFromStateFile(file, [], 16).agentCount).toBe(0);
      writeFileSync(file, '{"agents": {');
      expect(() => coreFromStateFile(file, [], 16)).toThrow(SyntaxError);
      expect(coreFromStateFile(path.join(dir, 'missing.json')).taskCount).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('reads the job tables record by record too, as parsing the whole document does (a journal on top included)', () => {
    const withJobs = sampleStateWithJobs();
    const want = computeCore(withJobs, declared);
    expect(want.jobs.jobs.map((j) => j.id)).toEqual(['etl/nightly', 'etl/report', 'web/backup', 'web/tick']);
    expect(coreFromStateBuffer(Buffer.from(JSON.stringify(withJobs, null, 1)), declared)).toEqual(want);
    expect(coreFromStateBuffer(Buffer.from(JSON.stringify({ ...withJobs, runs: [] })))).toBeUndefined();
    const dir = mkdtempSync(path.join(tmpdir(), 'factory-reader-'));
    try {
      const file = path.join(dir, 'state.json');
      writeFileSync(file, JSON.stringify({ ...withJobs, version: 2, rev: 3 }));
      for (const chunk of [5, 1 << 20]) expect(coreFromStateFile(file, declared, chunk).jobs).toEqual(want.jobs);
      // a journal after the snapshot: the run that ends and the new job are in the model
      const ended = { ...withJobs.runs!['web/tick/2026-01-01T00:00:29.000Z']!, state: 'succeeded', exitCode: 0 };
      const entry: JournalEntry = { rev: 4, ops: [{ table: 'runs', key: ended.id, value: ended }, { table: 'jobs', key: 'web/new', value: { ...withJobs.jobs!['web/tick']!, id: 'web/new', name: 'new' } }], events: [] };
      writeFileSync(path.join(dir, journalName(3)), encodeEntry(entry));
      const jobs = coreFromStateFile(file, declared).jobs;
      expect(jobs.jobs.map((j) => [j.id, j.running])).toEqual([['etl/nightly', 0], ['etl/report', 0], ['web/backup', 0], ['web/new', 0], ['web/tick', 0]]);
      expect(jobs.runs['web/tick']?.[0]).toMatchObject({ state: 'succeeded', exitCode: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('gives up on anything unusual (the caller then parses the whole text)', () => {
    const good = JSON.stringify(sampleState());
    for (const text of [good.slice(0, -1), good.replace('"agents":', '"agents": [], "agents":'), '[]', '{"agents": [], "tasks": {}, "events": []}', '{"agents": {}, "tasks": {}}', good + ' x', good.replace('"plans":{}', '"plans":{"a":}')]) {
      expect(coreFromStateBuffer(Buffer.from(text))).toBeUndefined();
    }
  });
});

describe('jobs of a state', () => {
  test('views by id with their runs newest first; a state without job tables has none', () => {
    const data = jobsOfTables(sampleJobTables());
    expect(data.jobs.map((j) => j.id)).toEqual(['etl/nightly', 'etl/report', 'web/backup', 'web/tick']);
    expect(data.jobs[0]).toMatchObject({ schedule: '0 2 * * *', timeZone: 'Europe/Paris', next: '2026-01-02T01:00:00.000Z', lastRun: { state: 'failed', exitCode: 3 }, running: 0, counts: { succeeded: 5, failed: 1, missed: 1, skipped: 2 } });
    expect(data.jobs[2]).toMatchObject({ suspended: true });
    expect(data.jobs[2]!.next).toBeUndefined();
    expect(data.jobs[3]).toMatchObject({ running: 1 });
    expect(data.runs['etl/nightly']!.map((r) => r.state)).toEqual(['failed', 'succeeded', 'missed']);
    expect(data.runs['etl/report']).toBeUndefined();
    expect(computeCore(sampleState()).jobs).toEqual({ jobs: [], runs: {} });
    expect(new MemoryStateSource(sampleStateWithJobs()).current().jobs).toEqual(data);
  });

  test('the filter matches every word in id, project, schedule, last result, suspended', () => {
    const { jobs } = jobsOfTables(sampleJobTables());
    expect(jobsMatching(jobs, '')).toBe(jobs);
    expect(jobsMatching(jobs, 'ETL').map((j) => j.id)).toEqual(['etl/nightly', 'etl/report']);
    expect(jobsMatching(jobs, 'failed').map((j) => j.id)).toEqual(['etl/nightly']);
    expect(jobsMatching(jobs, 'suspended web').map((j) => j.id)).toEqual(['web/backup']);
    expect(jobsMatching(jobs, 'after nightly').map((j) => j.id)).toEqual(['etl/report']);
    expect(jobsMatching(jobs, 'going').map((j) => j.id)).toEqual(['web/tick']);
  });

  test('action outcomes say what happened, as the jobs commands do', () => {
    expect(runNowOutcome({ id: 'etl/nightly/2026-01-01T00:00:31.000Z', agent: 'h1' })).toBe('etl/nightly/2026-01-01T00:00:31.000Z: started on h1');
    expect(runNowOutcome({ id: 'etl/nightly/x', reason: 'no agent fits' })).toBe('etl/nightly/x: waiting: no agent fits');
    expect(suspendOutcome({ id: 'web/backup', suspended: true })).toBe('web/backup suspended');
    expect(suspendOutcome({ id: 'web/backup', suspended: false, next: '2026-01-01T00:15:00.000Z' })).toBe('web/backup resumed; next slot 2026-01-01T00:15:00.000Z');
  });
});

describe('crash loops', () => {
  const m = buildModel(sampleStateWithDeployments());

  test('a crash-looping task is shown as `factory status` shows it: crash-loop, its restarts and next restart', () => {
    const t = m.tasks.find((r) => r.task === CRASHY.task)!;
    expect(t).toMatchObject({ state: 'exited', exitCode: 1, crashLoop: true, restarts: 3, nextRestartAt: '2026-01-01T00:00:34.000Z' });
    expect(taskStateOf(t)).toBe('crash-loop');
    // up again after 2 restarts: no crash loop, its restarts counted
    const up = m.tasks.find((r) => r.task === 'web/api/0')!;
    expect(up).toMatchObject({ state: 'running', restarts: 2 });
    expect(up.crashLoop).toBeUndefined();
    expect(taskStateOf(up)).toBe('running');
    expect(m.tasks.find((r) => r.task === 'web/api/1')!.restarts).toBeUndefined();
    // the header counts it as crash-loop, not as exited
    expect(m.totals.tasksByState).toEqual({ running: 4, failed: 1, lost: 1, 'crash-loop': 1 });
  });

  test('the filter finds it as crash-loop (a word or state:), and by its recorded state', () => {
    expect(tasksInScope(m, {}, 'crash-loop').map((t) => t.task)).toEqual([CRASHY.task]);
    expect(tasksInScope(m, {}, 'state:crash').map((t) => t.task)).toEqual([CRASHY.task]);
    expect(tasksInScope(m, {}, 'state:exited').map((t) => t.task)).toEqual([CRASHY.task]);
    expect(tasksInScope(m, {}, 'loop h1').map((t) => t.task)).toEqual([CRASHY.task]);
    expect(tasksInScope(m, {}, 'state:running').map((t) => t.task)).not.toContain(CRASHY.task);
  });

  test('the record-by-record reader gives the same columns', () => {
    const data = sampleStateWithDeployments();
    expect(coreFromStateBuffer(Buffer.from(JSON.stringify(data, null, 1)))).toEqual(computeCore(data));
  });
});

describe('deployments of a state', () => {
  test('newest first, with `deploy list`\'s counts and the policy in words; a state without the table has none', () => {
    const records = Object.values(sampleDeployments().deployments);
    const list = deploymentsOf(records);
    expect(list.map((d) => `${d.id} ${d.plan}/${d.group} ${d.status}`)).toEqual([
      'dep-0b0b0b0b0b farm/render waiting-promotion',
      'dep-0a0a0a0a0a web/api running',
      'dep-0c0c0c0c0c batch/tick reverted',
    ]);
    for (const d of list) expect({ old: d.old, new: d.new, healthy: d.healthy }).toEqual(deploymentCounts(records.find((r) => r.id === d.id)!));
    expect(list[1]).toMatchObject({ old: 3, new: 2, healthy: 1, count: 4, policy: '2 at a time, 1 extra, healthy for 1s', by: 'local:ops' });
    expect(list[0]).toMatchObject({ old: 1, new: 1, healthy: 1, count: 1, canary: 1, promoted: false });
    // a failed new task is not counted new
    expect(list[2]).toMatchObject({ old: 0, new: 0, healthy: 0, revertedBy: 'dep-0d0d0d0d0d' });
    expect(computeCore(sampleState()).deployments).toEqual([]);
    expect(new MemoryStateSource(sampleStateWithDeployments()).current().deployments).toEqual(list);
  });

  test('the note says what a canary waits for and what a revert did; the filter and the header counts', () => {
    const list = deploymentsOf(Object.values(sampleDeployments().deployments));
    expect(list.map(noteOf)).toEqual(['factory deploy promote dep-0b0b0b0b0b', '', 'reverted by dep-0d0d0d0d0d: batch/tick/0 unhealthy: 3 failed checks']);
    expect(deploymentsMatching(list, '')).toBe(list);
    expect(deploymentsMatching(list, 'promote').map((d) => d.id)).toEqual(['dep-0b0b0b0b0b']);
    expect(deploymentsMatching(list, 'active web').map((d) => d.id)).toEqual(['dep-0a0a0a0a0a']);
    expect(deploymentsMatching(list, 'REVERTED').map((d) => d.id)).toEqual(['dep-0c0c0c0c0c']);
    expect(deploymentsMatching(list, 'dep-0a').map((d) => d.id)).toEqual(['dep-0a0a0a0a0a']);
    expect(deploymentsTotals(list)).toEqual({ active: 2, paused: 0, waiting: 1 });
  });

  test('the reader reads the deployments table record by record, as parsing the whole document does (a journal on top included)', () => {
    const data = sampleStateWithDeployments();
    const want = computeCore(data);
    expect(want.deployments.map((d) => d.id)).toEqual(['dep-0b0b0b0b0b', 'dep-0a0a0a0a0a', 'dep-0c0c0c0c0c']);
    expect(coreFromStateBuffer(Buffer.from(JSON.stringify(data)))).toEqual(want);
    const dir = mkdtempSync(path.join(tmpdir(), 'factory-reader-'));
    try {
      const file = path.join(dir, 'state.json');
      writeFileSync(file, JSON.stringify({ ...data, version: 2, rev: 4 }));
      for (const chunk of [5, 1 << 20]) expect(coreFromStateFile(file, [], chunk).deployments).toEqual(want.deployments);
      // a journal after the snapshot: the canary promoted, the rollout goes on
      const promoted = { ...data.deployments!['dep-0b0b0b0b0b']!, status: 'running', promoted: true };
      const entry: JournalEntry = { rev: 5, ops: [{ table: 'deployments', key: promoted.id, value: promoted }], events: [] };
      writeFileSync(path.join(dir, journalName(4)), encodeEntry(entry));
      expect(coreFromStateFile(file).deployments[0]).toMatchObject({ id: 'dep-0b0b0b0b0b', status: 'running', promoted: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
