import { describe, expect, test } from 'vitest';
import { MemoryBackend } from '../../src/state/memory-backend.js';
import { StateWork } from '../../src/state/work.js';

const retention = { maxEvents: 50, maxAgeMs: 3600_000, perSubject: 10 };

describe('event log retention', () => {
  test('one crash-looping task cannot push the other events out', async () => {
    const b = new MemoryBackend({ retention });
    await b.lock();
    const w = new StateWork(b);
    w.event({ kind: 'agent-back', agent: 'a1', message: 'a1 back' });
    w.event({ kind: 'plan-applied', plan: 'web', message: 'applied web' });
    for (let i = 0; i < 500; i++) w.event({ kind: 'task-failed', task: 'bad/g/0', message: `failed ${i}` });
    await w.flush();
    const page = b.eventsSince(0);
    expect(page.reset).toBe(true);
    const kept = page.events;
    expect(kept.filter((e) => e.task === 'bad/g/0')).toHaveLength(10);
    expect(kept.map((e) => e.kind)).toContain('agent-back');
    expect(kept.map((e) => e.kind)).toContain('plan-applied');
    // the revisions of the kept events still grow by one per event committed
    expect(kept.at(-1)!.rev).toBe(502);
  });

  test('a reader behind the dropped revisions is told to reset, never silently skipped', async () => {
    const b = new MemoryBackend({ retention });
    await b.lock();
    const w = new StateWork(b);
    for (let i = 0; i < 120; i++) w.event({ kind: 'task-started', task: `a/g/${i}`, message: 'x' });
    await w.flush();
    expect(b.eventsSince(3).reset).toBe(true);
    const page = b.eventsSince(110);
    expect(page.reset).toBe(false);
    expect(page.events.map((e) => e.rev)).toEqual(Array.from({ length: 10 }, (_, i) => 111 + i));
  });

  test('watchers get every committed event in order; events carry plan and project of their task', async () => {
    const b = new MemoryBackend();
    const seen: string[] = [];
    b.watch((e) => seen.push(`${e.rev}:${e.kind}:${e.project ?? ''}`));
    await b.lock();
    const w = new StateWork(b, 'fct_000000000001');
    w.tasks.put({ task: 'a/g/0', plan: 'a', group: 'g', project: 'blue', agent: 'l', driver: 'process', specHash: 'h', state: 'running', resources: { cpus: 0, mem: 0, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: 'now' });
    w.event({ kind: 'task-started', task: 'a/g/0', message: 'started' });
    await w.flush();
    expect(seen).toEqual(['1:task-started:blue']);
    expect(b.eventsSince(0).events[0]).toMatchObject({ by: 'fct_000000000001', plan: 'a', topic: 'task' });
  });
});
