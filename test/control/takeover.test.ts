/**
 * A new leader's first pass (src/control/takeover.ts), against two real local agents (executors in
 * this process, their own work dirs) and real processes. What an old leader leaves is made by hand
 * after a real apply: a task whose process died while no host led, a task it started after the
 * state write it lost (the state never heard of it), and a second copy of a task on the other agent.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { AgentPool } from '../../src/control/agents.js';
import { applyPlans } from '../../src/control/plan.js';
import { closeStates, stateOf } from '../../src/control/state-handle.js';
import { Supervisor } from '../../src/control/supervisor.js';
import { takeOver, type TakeoverResult } from '../../src/control/takeover.js';
import type { TaskRunSpec } from '../../src/protocol/messages.js';
import { loadInventoryFile } from '../../src/spec/index.js';
import type { TaskRecord } from '../../src/state/types.js';
import { ExecutorClient } from '../../src/transport/client.js';
import { pidAlive, sleepersOf, waitFor } from '../helpers/cli.js';
import { oneCluster, writeInventory } from '../helpers/inventory.js';

const MARK = '7113'; // sleep's argument: this test's processes are the ones with this argv

/** sleepers lists the pids of this test's `sleep MARK` processes. */
const sleepers = (): number[] => sleepersOf(MARK);

let dirs: string[] = [];
afterEach(async () => {
  ExecutorClient.fencingEpoch = undefined;
  await closeStates();
  // a killed task's shim still writes its exit file into the task folder, and a task may be started
  // again meanwhile: kill until none is left (bounded), then retry a folder that filled meanwhile
  for (let i = 0; i < 50 && sleepers().length > 0; i++) {
    for (const pid of sleepers()) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true, maxRetries: 50, retryDelay: 100 });
  dirs = [];
});

/**
 * leftovers applies a plan of two tasks over agents a1 and a2, then leaves what a killed leader
 * would: p/nap/0's process killed, p/nap/2 started on a1 without a record, a second p/nap/1 on the
 * agent that does not hold it. Returns the state dir, the inventory and the pids.
 */
async function leftovers(): Promise<{ dir: string; inv: string; tasks: () => Promise<Record<string, TaskRecord>>; strayPid: number; copyPid: number; copyAgent: string; originalPid: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-takeover-'));
  dirs.push(dir);
  const inv = path.join(dir, 'inventory.yaml');
  const agents = ['a1', 'a2'].map((name) => ({ name, local: true, workDir: path.join(dir, name), resources: { cpus: 8, mem: '8Gi' } }));
  writeInventory(inv, oneCluster('dc', 'c1', agents));
  const plan = path.join(dir, 'p.yaml');
  fs.writeFileSync(plan, `name: p\nprocesses:\n  - name: nap\n    count: 2\n    command: [sleep, "${MARK}"]\n    resources: {cpus: 0.1, mem: 1Mi}\n`);
  const applied = await applyPlans({ planPaths: [plan], stateDir: dir, inventoryPath: inv });
  expect(applied.ok).toBe(true);
  const state = await stateOf(dir);
  const tasks = async () => {
    const s = await stateOf(dir);
    return Object.fromEntries(s.view().list('tasks').map((t) => [t.task, t]));
  };
  const before = await tasks();
  expect(Object.keys(before).sort()).toEqual(['p/nap/0', 'p/nap/1']);
  // a process that died while no host led
  process.kill(before['p/nap/0']!.pid!, 'SIGKILL');
  expect(await waitFor(() => !pidAlive(before['p/nap/0']!.pid!), 5000, 20)).toBe(true);
  // what the old leader started after its last write: p/nap/2 (unknown) and a second p/nap/1
  const one = before['p/nap/1']!;
  const copyAgent = one.agent === 'a1' ? 'a2' : 'a1';
  const pool = await AgentPool.connect((await loadInventoryFile(inv)).agents, { stateDir: dir, stateId: state.id });
  const spec = (task: string, agent: string): TaskRunSpec => ({
    task, driver: 'process', specHash: one.specHash, command: ['sleep', MARK], env: { FACTORY_AGENT: agent }, resources: one.resources,
    labels: { plan: 'p', group: 'nap', project: one.project }, stopGraceMs: 1000, restart: 'always',
  });
  try {
    const stray = await pool.connected.get('a1')!.client.run(spec('p/nap/2', 'a1'));
    const copy = await pool.connected.get(copyAgent)!.client.run(spec('p/nap/1', copyAgent));
    expect([stray.state, copy.state]).toEqual(['running', 'running']);
    return { dir, inv, tasks, strayPid: stray.pid!, copyPid: copy.pid!, copyAgent, originalPid: one.pid! };
  } finally {
    await pool.close();
  }
}

describe('a new leader\'s takeover pass', () => {
  test('without supervision: every agent asked at once; the dead task recorded, the unknown one adopted, the second copy stopped, the new epoch fenced on every agent', async () => {
    const left = await leftovers();
    const lines: string[] = [];
    ExecutorClient.fencingEpoch = () => 7;
    const r = await takeOver({ stateDir: left.dir, inventoryPath: left.inv, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ agents: 2, reached: 2, adopted: 1, ended: 1, lost: 0, straysStopped: 1, straysFailed: 0, unreadable: [] });
    expect(r.reconcile).toBeUndefined();
    expect(lines.join('\n')).toMatch(/takeover: asked 2 agents what runs \(2 answered\), 1 task adopted, 1 found ended or gone, 0 agents lost, 1 stray copy stopped in \d+ ms; no supervision pass/);

    const tasks = await left.tasks();
    // the dead one is recorded so, and not restarted: no supervision
    expect(tasks['p/nap/0']).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
    // the one the state never heard of is adopted where it runs
    expect(tasks['p/nap/2']).toMatchObject({ state: 'running', agent: 'a1', pid: left.strayPid });
    // one copy of p/nap/1 runs: the recorded one
    expect(tasks['p/nap/1']).toMatchObject({ state: 'running', pid: left.originalPid });
    expect(tasks['p/nap/1']!.agent).not.toBe(left.copyAgent);
    expect(await waitFor(() => !pidAlive(left.copyPid), 5000, 20)).toBe(true);
    expect(sleepers().sort()).toEqual([left.originalPid, left.strayPid].sort());

    const events = (await stateOf(left.dir)).eventsSince(0).events;
    const kinds = events.map((e) => `${e.kind} ${e.task ?? ''}`.trim());
    expect(kinds).toEqual(expect.arrayContaining(['task-failed p/nap/0', 'task-adopted p/nap/2', 'task-duplicate p/nap/1', 'task-duplicate-stopped p/nap/1', 'leader-takeover']));
    expect(events.find((e) => e.kind === 'leader-takeover')).toMatchObject({ topic: 'state', by: 'control-host' });

    // every agent saw the new epoch: a call of the old one (6) is refused by both, though this pass started nothing
    ExecutorClient.fencingEpoch = () => 6;
    const old = await AgentPool.connect((await loadInventoryFile(left.inv)).agents, { stateDir: left.dir, stateId: (await stateOf(left.dir)).id });
    try {
      expect(old.connected.size).toBe(0);
      expect([...old.failed.values()].map((f) => f.error)).toEqual([expect.stringMatching(/epoch 6.*epoch 7/), expect.stringMatching(/epoch 6.*epoch 7/)]);
    } finally {
      await old.close();
    }
  }, 60_000);

  test('with supervision: the supervision pass follows at once, first of the supervisor\'s: the dead task restarts, the one no plan wants stops', async () => {
    const left = await leftovers();
    const lines: string[] = [];
    const supervisor = new Supervisor({ stateDir: left.dir, intervalMs: 3_600_000, log: (l) => lines.push(l) });
    let result: TakeoverResult | undefined;
    supervisor.start(async () => (result = await takeOver({ stateDir: left.dir, inventoryPath: left.inv, supervisor, log: (l) => lines.push(l) })));
    await supervisor.stop(); // waits for the pass it started with
    expect(result, lines.join('\n')).toMatchObject({ adopted: 1, ended: 1, straysStopped: 1 });
    expect(supervisor.passes).toBe(1);
    expect(result!.reconcile?.passes.map((p) => p.results.map((x) => `${x.action} ${x.task} ${x.ok}`).sort())).toEqual([['start p/nap/0 true', 'stop p/nap/2 true']]);

    const tasks = await left.tasks();
    expect(Object.keys(tasks).sort()).toEqual(['p/nap/0', 'p/nap/1']);
    expect(tasks['p/nap/0']!.state).toBe('running');
    expect(pidAlive(tasks['p/nap/0']!.pid!)).toBe(true);
    expect(tasks['p/nap/1']).toMatchObject({ state: 'running', pid: left.originalPid });
    expect(await waitFor(() => !pidAlive(left.strayPid) && !pidAlive(left.copyPid), 5000, 20)).toBe(true);
    expect(sleepers().sort()).toEqual([left.originalPid, tasks['p/nap/0']!.pid!].sort());
  }, 60_000);

  test('a supervisor started with a first pass schedules nothing after it when it does not supervise, and stop() waits for it', async () => {
    const supervisor = new Supervisor({ stateDir: '/nonexistent', intervalMs: 0, log: () => undefined });
    let release!: () => void;
    let ended = false;
    supervisor.start(() => new Promise<void>((r) => (release = r)).then(() => void (ended = true)));
    const stopped = supervisor.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(false);
    release();
    await stopped;
    expect(ended).toBe(true);
    expect(supervisor.passes).toBe(0);
  });
});
