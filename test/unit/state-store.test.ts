import { describe, expect, test, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StateStore, STATE_FILE } from '../../src/state/store.js';
import { StateError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'factory-state-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('StateStore', () => {
  test('starts empty, writes atomically with mode 0600 and keeps a backup of the previous document', async () => {
    const s = await StateStore.open(dir);
    expect(s.data.tasks).toEqual({});
    await s.withLock(async () => {
      s.data.plans.a = { name: 'a', project: 'p', file: 'a.yaml', appliedAt: 'now' };
      await s.save();
      s.data.plans.b = { name: 'b', project: 'p', file: 'b.yaml', appliedAt: 'now' };
      await s.save();
    });
    const file = path.join(dir, STATE_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).plans)).toEqual(['a', 'b']);
    expect(Object.keys(JSON.parse(readFileSync(`${file}.bak`, 'utf8')).plans)).toEqual(['a']);
    // no temp files left behind
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const again = await StateStore.open(dir);
    expect(Object.keys(again.data.plans)).toEqual(['a', 'b']);
  });

  test('refuses a corrupt file, keeps a copy and never overwrites it', async () => {
    const file = path.join(dir, STATE_FILE);
    writeFileSync(file, '{"version": 1, "agents": {}, "tasks": {');
    const err = await StateStore.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).code).toBe('E_STATE_CORRUPT');
    expect((err as StateError).message).toMatch(/state file .*state\.json is corrupt: not valid JSON/);
    expect((err as StateError).message).toMatch(/a copy was kept at .*state\.json\.corrupt-/);
    expect(readFileSync(file, 'utf8')).toBe('{"version": 1, "agents": {}, "tasks": {');
    expect(readdirSync(dir).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
  });

  test('refuses a document of the wrong shape or version', async () => {
    writeFileSync(path.join(dir, STATE_FILE), JSON.stringify({ version: 99, agents: {}, tasks: {}, plans: {}, events: [] }));
    await expect(StateStore.open(dir)).rejects.toThrow(/unsupported state version 99/);
    writeFileSync(path.join(dir, STATE_FILE), '[]');
    await expect(StateStore.open(dir)).rejects.toThrow(/expected a JSON object/);
  });

  test('refuses a state directory that cannot be used', async () => {
    const notDir = path.join(dir, 'file');
    writeFileSync(notDir, 'x');
    const err = await StateStore.open(path.join(notDir, 'state')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).message).toMatch(/state directory .* is not usable: (ENOTDIR|EEXIST)/);
  });

  test('a second writer waits for the lock, and gives up with a clear message after the timeout', async () => {
    const a = await StateStore.open(dir);
    const b = await StateStore.open(dir);
    await a.lock({ purpose: 'plan apply' });
    const err = await b.lock({ timeoutMs: 300 }).catch((e: unknown) => e);
    expect((err as StateError).code).toBe('E_STATE_LOCKED');
    expect((err as StateError).message).toMatch(/locked by another factory process \(pid \d+, plan apply/);
    // once released, the waiter gets it and sees the first writer's changes
    a.data.plans.x = { name: 'x', project: 'p', file: 'x.yaml', appliedAt: 'now' };
    await a.save();
    const waiting = b.lock({ timeoutMs: 5_000 });
    setTimeout(() => void a.unlock(), 200);
    await waiting;
    expect(Object.keys(b.data.plans)).toEqual(['x']);
    await b.unlock();
    expect(existsSync(path.join(dir, 'state.lock'))).toBe(false);
  });
});

describe('StateStore.lock and a state that turns corrupt', () => {
  test('a lock whose read of the state fails is released, so the next writer is not locked out', async () => {
    const a = await StateStore.open(dir);
    writeFileSync(path.join(dir, STATE_FILE), '{"version":1,"tasks":');
    const err = await a.lock({ purpose: 'plan apply' }).catch((e: unknown) => e);
    expect((err as StateError).message).toMatch(/is corrupt/);
    expect(existsSync(path.join(dir, 'state.lock'))).toBe(false);
    writeFileSync(path.join(dir, STATE_FILE), JSON.stringify({ version: 1, agents: {}, tasks: {}, plans: {}, events: [] }));
    const b = await StateStore.open(dir);
    await b.lock({ timeoutMs: 0 });
    await b.unlock();
  });
});

describe('StateStore.saveThrottled', () => {
  test('writes at most once per interval; save() always writes', async () => {
    const s = await StateStore.open(dir);
    await s.withLock(async () => {
      s.data.plans.a = { name: 'a', project: 'p', file: 'a.yaml', appliedAt: 'now' };
      await s.save();
      s.data.plans.b = { name: 'b', project: 'p', file: 'b.yaml', appliedAt: 'now' };
      await s.saveThrottled(60_000); // skipped: written a moment ago
      expect(Object.keys(JSON.parse(readFileSync(path.join(dir, STATE_FILE), 'utf8')).plans)).toEqual(['a']);
      await s.saveThrottled(0); // due
      expect(Object.keys(JSON.parse(readFileSync(path.join(dir, STATE_FILE), 'utf8')).plans)).toEqual(['a', 'b']);
      s.data.plans.c = { name: 'c', project: 'p', file: 'c.yaml', appliedAt: 'now' };
      await s.save();
    });
    expect(Object.keys(JSON.parse(readFileSync(path.join(dir, STATE_FILE), 'utf8')).plans)).toEqual(['a', 'b', 'c']);
  });
});
