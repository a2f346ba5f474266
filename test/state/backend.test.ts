import { describe, expect, test, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, readdirSync, existsSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileBackend, STATE_FILE } from '../../src/state/file-backend.js';
import { journalName } from '../../src/state/journal.js';
import { StateWork } from '../../src/state/work.js';
import { plan, put, task } from './records.js';
import { openState, openStateDir } from '../../src/state/open.js';
import { STATE_ID_RE } from '../../src/state/state-id.js';
import { StateError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'factory-state-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});


describe('FileBackend', () => {
  test('a new state gets an id and a snapshot (mode 0600); commits go to the journal and survive a reopen', async () => {
    const b = await FileBackend.open(dir);
    expect(b.id).toMatch(STATE_ID_RE);
    expect(statSync(path.join(dir, STATE_FILE)).mode & 0o777).toBe(0o600);
    await put(b, 'a');
    await put(b, 'b');
    const journal = path.join(dir, journalName(0));
    expect(readFileSync(journal, 'utf8').trim().split('\n')).toHaveLength(2);
    const again = await FileBackend.open(dir);
    expect(again.id).toBe(b.id);
    expect(again.view().list('plans').map((p) => p.name).sort()).toEqual(['a', 'b']);
    expect(again.eventsSince(0).events.map((e) => [e.rev, e.kind, e.topic])).toEqual([[1, 'plan-applied', 'plan'], [2, 'plan-applied', 'plan']]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('one change in a state of 20k tasks writes a journal line, not the state', async () => {
    const b = await FileBackend.open(dir);
    await b.lock();
    const w = new StateWork(b);
    for (let i = 0; i < 20_000; i++) w.tasks.put(task(`a/g/${i}`));
    await w.flush();
    await b.compact();
    const before = b.stats().bytesWritten;
    w.tasks.put(task('a/g/7', 'exited'));
    w.event({ kind: 'task-exited', task: 'a/g/7', message: 'a/g/7 exited' });
    await w.flush();
    await b.unlock();
    const written = b.stats().bytesWritten - before;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(2_000);
    const again = await FileBackend.open(dir);
    expect(again.view().get('tasks', 'a/g/7')?.state).toBe('exited');
    expect(again.view().size('tasks')).toBe(20_000);
    expect(again.eventsSince(0).events.at(-1)?.project).toBe('p');
  });

  test('a torn last journal line (a crash mid-append) is dropped; the next commit cuts it off', async () => {
    const b = await FileBackend.open(dir);
    await put(b, 'a');
    appendFileSync(path.join(dir, journalName(0)), '{"rev":2,"ops":[');
    const c = await FileBackend.open(dir);
    expect(c.view().list('plans').map((p) => p.name)).toEqual(['a']);
    await put(c, 'b');
    const d = await FileBackend.open(dir);
    expect(d.view().list('plans').map((p) => p.name).sort()).toEqual(['a', 'b']);
    expect(d.view().rev).toBe(2);
  });

  test('a corrupt journal line is refused, one copy kept however often it is read, never overwritten', async () => {
    const b = await FileBackend.open(dir);
    await put(b, 'a');
    await put(b, 'b');
    const journal = path.join(dir, journalName(0));
    const text = readFileSync(journal, 'utf8').replace('"a"', '"x"');
    writeFileSync(journal, text);
    for (let i = 0; i < 3; i++) {
      const err = await FileBackend.open(dir).catch((e: unknown) => e);
      expect((err as StateError).code).toBe('E_STATE_CORRUPT');
      expect((err as StateError).message).toMatch(/checksum mismatch.*a copy was kept at/);
    }
    expect(readdirSync(dir).filter((f) => f.includes('.corrupt-'))).toHaveLength(1);
    expect(readFileSync(journal, 'utf8')).toBe(text);
  });

  test('refuses a corrupt snapshot and keeps one copy of it', async () => {
    const file = path.join(dir, STATE_FILE);
    writeFileSync(file, '{"version": 2, "agents": {}, "tasks": {');
    for (let i = 0; i < 2; i++) {
      const err = await FileBackend.open(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).message).toMatch(/state file .*state\.json is corrupt: not valid JSON.*a copy was kept at .*state\.json\.corrupt-/);
    }
    expect(readFileSync(file, 'utf8')).toBe('{"version": 2, "agents": {}, "tasks": {');
    expect(readdirSync(dir).filter((f) => f.startsWith('state.json.corrupt-'))).toHaveLength(1);
    writeFileSync(file, JSON.stringify({ version: 99, agents: {}, tasks: {}, plans: {}, events: [] }));
    await expect(FileBackend.open(dir)).rejects.toThrow(/unsupported state version 99/);
  });

  test('a version 1 state is migrated on first open and the old file kept', async () => {
    const v1 = { version: 1, agents: {}, tasks: { 'a/g/0': task('a/g/0') }, plans: { a: plan('a') }, events: [{ at: '2026-01-01T00:00:00Z', kind: 'task-started', task: 'a/g/0', message: 'started' }] };
    writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(v1));
    const b = await FileBackend.open(dir);
    expect(b.view().get('tasks', 'a/g/0')?.state).toBe('running');
    expect(b.eventsSince(0).events).toMatchObject([{ rev: 1, topic: 'task', kind: 'task-started' }]);
    expect(JSON.parse(readFileSync(path.join(dir, 'state.json.v1'), 'utf8'))).toEqual(v1);
    expect(JSON.parse(readFileSync(path.join(dir, STATE_FILE), 'utf8')).version).toBe(2);
    expect((await FileBackend.open(dir)).id).toBe(b.id);
  });

  test('compaction folds the journal into the snapshot; a reader following along sees every event once', async () => {
    const writer = await FileBackend.open(dir, { compactBytes: 1 });
    const reader = await FileBackend.open(dir);
    const seen: number[] = [];
    reader.watch((e) => seen.push(e.rev));
    for (let i = 0; i < 5; i++) {
      await put(writer, `p${i}`);
      await reader.refresh();
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(readdirSync(dir).filter((f) => f.startsWith('journal-')).length).toBeLessThanOrEqual(1);
    expect(writer.stats().compactions).toBeGreaterThan(0);
    expect((await FileBackend.open(dir)).view().size('plans')).toBe(5);
  });

  // waiting for the lock, taking over a killed holder's, and guards are the contract's (file-contract.test.ts)
  test('unlock removes the lock file, so a lock held by nobody is never mistaken for one held', async () => {
    const a = await FileBackend.open(dir);
    await a.lock({ purpose: 'plan apply' });
    expect(existsSync(path.join(dir, 'state.lock'))).toBe(true);
    await a.unlock();
    expect(existsSync(path.join(dir, 'state.lock'))).toBe(false);
  });

  test('openState takes a directory or file://; the commands’ openStateDir refuses etcd:// by name', async () => {
    const b = await openState(`file://${dir}`);
    expect(b).toBeInstanceOf(FileBackend);
    expect(b.location).toBe(dir);
    await expect(openStateDir('etcd://127.0.0.1:2379/factory')).rejects.toMatchObject({ code: 'E_STATE_BACKEND', hint: expect.stringMatching(/state migrate/) });
    await expect(openState('etcd://127.0.0.1:2379/a b')).rejects.toMatchObject({ code: 'E_STATE_BACKEND', message: expect.stringMatching(/bad etcd state location/) });
  });
});

describe('FileBackend following its own directory', () => {
  test('a handle that follows the directory and commits quickly never counts its own line twice nor leaves a hole', async () => {
    const b = await FileBackend.open(dir, { follow: true });
    const seen: number[] = [];
    b.watch((e) => seen.push(e.rev));
    for (let i = 0; i < 60; i++) {
      await put(b, `p${i}`);
      // let the directory watcher fire between commits, as it does in a control host
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await b.close();
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const again = await FileBackend.open(dir);
    expect(again.view().size('plans')).toBe(60);
    expect(again.eventsSince(0).events.map((e) => e.rev)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });
});
