/**
 * `factory agents drain` with two real local agents: the drained agent's tasks move to the other
 * one, nothing new lands on it, and --undo clears the drain.
 */
import { afterAll, expect, test } from 'vitest';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pidAlive, runCli, scratchDir } from '../helpers/cli.js';
import { oneCluster, writeInventory } from '../helpers/inventory.js';

const scratch = scratchDir();
const state = path.join(scratch.dir, 'state');
const inv = path.join(scratch.dir, 'inventory.yaml');
const plan = path.join(scratch.dir, 'pair.yaml');
const localAgent = (name: string) => ({ name, local: true, workDir: path.join(scratch.dir, name), resources: { cpus: 2, mem: '1Gi' } });
writeInventory(inv, oneCluster('dc', 'c1', [localAgent('a1'), localAgent('a2')]));
writeFileSync(plan, 'name: pair\nprocesses:\n  - name: nap\n    count: 2\n    maxPerAgent: 1\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
const common = ['--state', state, '--inventory', inv];
const started = new Set<number>();

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, ...common], { cwd: scratch.dir });
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

async function tasks(): Promise<{ task: string; agent: string; pid?: number; state: string }[]> {
  const r = await runCli(['status', '--json', ...common], { cwd: scratch.dir });
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout);
  for (const t of s.tasks) if (t.pid) started.add(t.pid);
  return s.tasks;
}

test('drain moves tasks off an agent and keeps new ones away; --undo clears it', async () => {
  const a = await runCli(['plan', 'apply', plan, ...common, '--json'], { cwd: scratch.dir });
  expect(a.code, a.stderr).toBe(0);
  // maxPerAgent 1: one task on each agent, to begin with
  expect((await tasks()).map((t) => t.agent).sort()).toEqual(['a1', 'a2']);

  // drop maxPerAgent so both tasks may share a2: an edited plan file reaches the state when it is
  // applied (a drain re-applies the plans as applied, never the files as they are now)
  writeFileSync(plan, 'name: pair\nprocesses:\n  - name: nap\n    count: 2\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
  const edited = await runCli(['plan', 'apply', plan, ...common], { cwd: scratch.dir });
  expect(edited.code, edited.stderr).toBe(0);
  const before = await tasks();
  expect(before.map((t) => t.agent).sort()).toEqual(['a1', 'a2']);
  const d = await runCli(['agents', 'drain', 'a1', ...common, '--json'], { cwd: scratch.dir });
  expect(d.code, d.stderr).toBe(0);
  const dr = JSON.parse(d.stdout);
  expect(dr.draining).toBe(true);
  const after = await tasks();
  expect(after.map((t) => t.agent)).toEqual(['a2', 'a2']);
  for (const t of after) {
    expect(t.state).toBe('running');
    expect(pidAlive(t.pid!)).toBe(true);
  }
  const moved = before.find((t) => t.agent === 'a1')!;
  expect(pidAlive(moved.pid!)).toBe(false);
  const a1Tasks = path.join(scratch.dir, 'a1', 'tasks');
  expect(existsSync(a1Tasks) ? readdirSync(a1Tasks) : []).toEqual([]);

  const st = JSON.parse((await runCli(['status', '--json', ...common], { cwd: scratch.dir })).stdout);
  expect(st.agents.find((x: { name: string }) => x.name === 'a1').state).toBe('draining');

  // nothing new lands on a draining agent
  writeFileSync(plan, 'name: pair\nprocesses:\n  - name: nap\n    count: 3\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
  const more = await runCli(['plan', 'apply', plan, ...common, '--json'], { cwd: scratch.dir });
  expect(more.code, more.stderr).toBe(0);
  expect((await tasks()).map((t) => t.agent)).toEqual(['a2', 'a2', 'a2']);

  const undo = await runCli(['agents', 'drain', 'a1', '--undo', ...common, '--json'], { cwd: scratch.dir });
  expect(undo.code, undo.stderr).toBe(0);
  const st2 = JSON.parse((await runCli(['status', '--json', ...common], { cwd: scratch.dir })).stdout);
  expect(st2.agents.find((x: { name: string }) => x.name === 'a1').state).toBe('ready');
});

test('a drain re-applies the plans as applied, from any directory, and never an edited plan file', async () => {
  const a = await runCli(['plan', 'apply', 'pair.yaml', ...common], { cwd: scratch.dir });
  expect(a.code, a.stderr).toBe(0);
  // an edit that is not applied: the drain must not bring it in
  writeFileSync(plan, 'name: pair\nprocesses:\n  - name: nap\n    count: 5\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
  const d = await runCli(['agents', 'drain', 'a2', ...common, '--json'], { cwd: '/' });
  expect(d.code, d.stderr).toBe(0);
  const dr = JSON.parse(d.stdout);
  expect(dr.skipped).toEqual([]);
  expect(dr.plans).toEqual([plan]);
  expect((await tasks()).map((t) => t.agent)).toEqual(['a1', 'a1', 'a1']);
  writeFileSync(plan, 'name: pair\nprocesses:\n  - name: nap\n    count: 3\n    command: [sleep, "600"]\n    resources: {cpus: 0.1, mem: 8Mi}\n');
  const undo = await runCli(['agents', 'drain', 'a2', '--undo', ...common, '--json'], { cwd: '/' });
  expect(undo.code, undo.stderr).toBe(0);
});
