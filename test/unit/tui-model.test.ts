import { describe, expect, test } from 'vitest';
import { agentsInScope, buildModel, computeCore, eventsMatching, taskSortKey, tasksInScope } from '../../src/tui/model.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { coreFromStateBuffer, coreFromStateFile } from '../../src/tui/state-reader.js';
import { sampleState } from '../tui/fixtures.js';

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
  test('gives up on anything unusual (the caller then parses the whole text)', () => {
    const good = JSON.stringify(sampleState());
    for (const text of [good.slice(0, -1), good.replace('"agents":', '"agents": [], "agents":'), '[]', '{"agents": [], "tasks": {}, "events": []}', '{"agents": {}, "tasks": {}}', good + ' x', good.replace('"plans":{}', '"plans":{"a":}')]) {
      expect(coreFromStateBuffer(Buffer.from(text))).toBeUndefined();
    }
  });
});
