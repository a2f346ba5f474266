/**
 * The HA trial's checker (ha-history.ts) on hand-made histories: which final values a register's
 * history allows, how a command's answer is classified, and what the process checks report.
 */
import { describe, expect, test } from 'vitest';
import { checkProcesses, checkRegisters, classifyOutcome, finalCandidates, registerValue, type FinalTask, type HaOp } from './ha-history.js';

let next = 0;
/** op is a write of count to plan p over [start, end] with an outcome. */
function op(start: number, end: number, count: number, outcome: HaOp['outcome'], p = 'p0'): HaOp {
  return { id: next++, client: 0, plan: p, kind: count === 0 ? 'destroy' : 'apply', count, start, end, outcome, exit: outcome === 'ok' ? 0 : 1 };
}
const values = (h: HaOp[], p = 'p0') => finalCandidates(h, p).map((c) => c.count).sort();
const running = (plan: string, n: number, pid0 = 100): FinalTask[] => Array.from({ length: n }, (_, i) => ({ task: `${plan}/nap/${i}`, plan, state: 'running', pid: pid0 + i }));

describe('finalCandidates: the values a register may hold at the end', () => {
  test('no write at all: only the initial 0', () => {
    expect(values([])).toEqual([0]);
  });

  test('writes one after the other: only the last acknowledged one', () => {
    expect(values([op(0, 10, 1, 'ok'), op(20, 30, 2, 'ok'), op(40, 50, 3, 'ok')])).toEqual([3]);
  });

  test('a failed write never took effect, even the last one', () => {
    expect(values([op(0, 10, 1, 'ok'), op(20, 30, 2, 'failed')])).toEqual([1]);
    expect(values([op(0, 10, 2, 'failed')])).toEqual([0]);
  });

  test('an unknown write may have taken effect, before or after a later acknowledged one', () => {
    // the unknown write may still land after the acknowledged one that started later (its end is never)
    expect(values([op(0, 10, 1, 'ok'), op(20, 30, 2, 'unknown'), op(40, 50, 3, 'ok')])).toEqual([2, 3]);
    // nothing acknowledged: the initial value stays possible
    expect(values([op(0, 10, 2, 'unknown')])).toEqual([0, 2]);
  });

  test('an acknowledged write that started after another ended hides it; overlapping ones may come in either order', () => {
    expect(values([op(0, 10, 1, 'ok'), op(11, 20, 2, 'ok')])).toEqual([2]);
    expect(values([op(0, 10, 1, 'ok'), op(5, 20, 2, 'ok')])).toEqual([1, 2]);
    // a write that ended before the last one started, overlapping an earlier one, is hidden all the same
    expect(values([op(0, 30, 1, 'ok'), op(5, 10, 2, 'ok'), op(20, 40, 3, 'ok')])).toEqual([1, 3]);
  });

  test('a destroy writes 0; plans are separate registers', () => {
    const h = [op(0, 10, 2, 'ok', 'a'), op(0, 10, 3, 'ok', 'b'), op(20, 30, 0, 'ok', 'a')];
    expect(values(h, 'a')).toEqual([0]);
    expect(values(h, 'b')).toEqual([3]);
  });
});

describe('classifyOutcome: what the client knows from an answer', () => {
  test('exit 0 is acknowledged; a timeout is unknown', () => {
    expect(classifyOutcome({ exit: 0, stdout: '{}', timedOut: false })).toEqual({ outcome: 'ok' });
    expect(classifyOutcome({ exit: null, stdout: '', timedOut: true })).toEqual({ outcome: 'unknown', code: 'timeout' });
  });

  test('errors that say nothing was written are failed; a cut connection or an etcd error is unknown', () => {
    const err = (code: string) => classifyOutcome({ exit: 1, stdout: JSON.stringify({ error: { code, message: 'm' } }), timedOut: false });
    expect(err('E_NOT_LEADER')).toEqual({ outcome: 'failed', code: 'E_NOT_LEADER' });
    expect(err('E_STATE_FENCED').outcome).toBe('failed');
    expect(err('E_CONTROL_GONE')).toEqual({ outcome: 'unknown', code: 'E_CONTROL_GONE' });
    expect(err('E_STATE_UNAVAILABLE').outcome).toBe('unknown');
    expect(err('E_CONTROL_TIMEOUT').outcome).toBe('unknown');
  });

  test('a result with a non-zero exit (part of it failed) and unreadable output are unknown', () => {
    expect(classifyOutcome({ exit: 3, stdout: JSON.stringify({ ok: false, results: [] }), timedOut: false }).outcome).toBe('unknown');
    expect(classifyOutcome({ exit: 1, stdout: 'boom', timedOut: false }).outcome).toBe('unknown');
  });
});

describe('registerValue and checkRegisters: the final state against the history', () => {
  test('the value is the count of tasks 0…n-1, all running; anything else is no value', () => {
    expect(registerValue('p0', 'nap', running('p0', 3))).toEqual({ count: 3 });
    expect(registerValue('p0', 'nap', [])).toEqual({ count: 0 });
    expect(registerValue('p0', 'nap', running('p0', 3).filter((t) => t.task !== 'p0/nap/1')).why).toMatch(/are not p0\/nap\/0…1/);
    expect(registerValue('p0', 'nap', [{ ...running('p0', 1)[0]!, state: 'exited' }]).why).toMatch(/not running: p0\/nap\/0 exited/);
  });

  test('the last acknowledged value holds: no violation; an older one: a lost write naming the history', () => {
    const h = [op(0, 10, 1, 'ok'), op(20, 30, 2, 'ok')];
    expect(checkRegisters(h, ['p0'], 'nap', running('p0', 2))).toEqual([]);
    const v = checkRegisters(h, ['p0'], 'nap', running('p0', 1));
    expect(v).toHaveLength(1);
    expect(v[0]!.check).toBe('lost-write');
    expect(v[0]!.detail).toMatch(/holds 1 task\(s\); the history allows 2 \(#\d+ c0 p0 apply ×2 \[20, 30\] ms ok\)/);
  });

  test('a destroy acknowledged last and tasks left: a lost write', () => {
    expect(checkRegisters([op(0, 10, 2, 'ok'), op(20, 30, 0, 'ok')], ['p0'], 'nap', running('p0', 1))).toHaveLength(1);
    expect(checkRegisters([op(0, 10, 2, 'ok'), op(20, 30, 0, 'ok')], ['p0'], 'nap', [])).toEqual([]);
  });
});

describe('checkProcesses: the state against the processes', () => {
  const tasks = running('p0', 2);
  test('each running task with its one process: nothing to report', () => {
    expect(checkProcesses(tasks, [{ pid: 100, task: 'p0/nap/0' }, { pid: 101, task: 'p0/nap/1' }])).toEqual([]);
  });

  test('a task id with two processes, a process of no task, a task without its process', () => {
    const v = checkProcesses(tasks, [
      { pid: 100, task: 'p0/nap/0' },
      { pid: 200, task: 'p0/nap/0' },
      { pid: 300, task: 'p9/nap/0' },
      { pid: 400 },
    ]);
    expect(v.filter((x) => x.check === 'twice').map((x) => x.detail)).toEqual(['p0/nap/0 runs 2 times: pids 100, 200']);
    expect(v.filter((x) => x.check === 'no-task').map((x) => x.detail)).toEqual([
      'pid 200 (p0/nap/0) is not the pid the state has for it (100)',
      'pid 300 (p9/nap/0) is no running task of the state',
      'pid 400 (no FACTORY_TASK) is no running task of the state',
    ]);
    expect(v.filter((x) => x.check === 'no-process').map((x) => x.detail)).toEqual(['p0/nap/1 is running in the state with pid 101, and no such process runs']);
  });
});
