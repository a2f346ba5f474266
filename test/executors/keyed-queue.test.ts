import { expect, test } from 'vitest';
import { KeyedQueue } from '../../src/executors/drivers/keyed-queue.js';

const later = <T>(ms: number, v: T, log: string[], tag: string) =>
  new Promise<T>((r) =>
    setTimeout(() => {
      log.push(tag);
      r(v);
    }, ms),
  );

test('one key runs in order, other keys run alongside, and a failure does not block the queue', async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  const a1 = q.run('a', () => later(30, 1, log, 'a1'));
  const a2 = q.run('a', async () => {
    log.push('a2-start');
    throw new Error('boom');
  });
  const a3 = q.run('a', () => later(1, 3, log, 'a3'));
  const b1 = q.run('b', () => later(5, 'b', log, 'b1'));
  await expect(a2).rejects.toThrow('boom');
  expect(await a1).toBe(1);
  expect(await a3).toBe(3);
  expect(await b1).toBe('b');
  // b1 finished while a1 was still running; a2 started only after a1; a3 after a2 failed
  expect(log).toEqual(['b1', 'a1', 'a2-start', 'a3']);
});
