/**
 * Two factory states pointed at the same local agent (one workDir), each applying the quickstart
 * example (examples/quickstart.yaml) with the built CLI: both run their own copies, each `status`
 * lists only its own tasks and shows the other's as foreign, an op on a foreign task is refused, and
 * destroying one leaves the other's tasks running.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pidAlive, ROOT, runCli, scratchDir } from '../helpers/cli.js';
import { oneCluster, writeInventory } from '../helpers/inventory.js';

const SOLO = `name: solo
project: demo
processes:
  - name: nap
    command: [sleep, "600"]
    resources: {cpus: 0.1, mem: 8Mi}
`;

interface ForeignJson { task: string; state: string; driver: string; taskState: string; pid?: number }
interface StatusJson {
  stateId: string;
  agents: { name: string; state: string; resources: { cpus: number }; foreign?: ForeignJson[] }[];
  tasks: { task: string; agent: string; state: string; pid?: number }[];
}

const scratch = scratchDir('factory-two-states-');
const inv = path.join(scratch.dir, 'inventory.yaml');
const agentDir = path.join(scratch.dir, 'agent');
const plan = path.join(ROOT, 'examples', 'quickstart.yaml');
const solo = path.join(scratch.dir, 'solo.yaml');
const stateA = ['--state', path.join(scratch.dir, 'state-a'), '--inventory', inv];
const stateB = ['--state', path.join(scratch.dir, 'state-b'), '--inventory', inv];
const started = new Set<number>();

writeInventory(inv, oneCluster('local', 'local', [{ name: 'local', local: true, workDir: agentDir }]));
writeFileSync(solo, SOLO);

async function statusOf(common: string[]): Promise<StatusJson> {
  const r = await runCli(['status', '--json', ...common], { cwd: scratch.dir });
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as StatusJson;
  for (const t of s.tasks) if (t.pid) started.add(t.pid);
  for (const a of s.agents) for (const f of a.foreign ?? []) if (f.pid) started.add(f.pid);
  return s;
}

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, solo, ...stateA], { cwd: scratch.dir }).catch(() => undefined);
  await runCli(['plan', 'destroy', plan, solo, ...stateB], { cwd: scratch.dir }).catch(() => undefined);
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

describe('two states on one agent', () => {
  let a: StatusJson;
  let b: StatusJson;

  test('both apply the same plan: each runs its own three tasks, nothing is adopted across states', async () => {
    const ra = await runCli(['plan', 'apply', plan, ...stateA, '--json'], { cwd: scratch.dir });
    expect(ra.code, ra.stderr).toBe(0);
    expect(JSON.parse(ra.stdout).changes).toEqual({ create: 3, destroy: 0, update: 0 });
    const rb = await runCli(['plan', 'apply', plan, ...stateB, '--json'], { cwd: scratch.dir });
    expect(rb.code, rb.stderr).toBe(0);
    // B creates its own three: A's tasks of the same ids are not B's
    expect(JSON.parse(rb.stdout).changes).toEqual({ create: 3, destroy: 0, update: 0 });

    a = await statusOf(stateA);
    b = await statusOf(stateB);
    expect(a.stateId).toMatch(/^st-[0-9a-f]{12}$/);
    expect(b.stateId).toMatch(/^st-[0-9a-f]{12}$/);
    expect(a.stateId).not.toBe(b.stateId);
    const ids = ['quickstart/echo-env/0', 'quickstart/ticker/0', 'quickstart/ticker/1'];
    expect(a.tasks.map((t) => t.task)).toEqual(ids);
    expect(b.tasks.map((t) => t.task)).toEqual(ids);
    for (const t of [...a.tasks, ...b.tasks]) {
      expect(t.state).toBe('running');
      expect(pidAlive(t.pid!)).toBe(true);
    }
    const pidsA = a.tasks.map((t) => t.pid);
    const pidsB = b.tasks.map((t) => t.pid);
    expect(pidsA.filter((p) => pidsB.includes(p))).toEqual([]);
    // folders on the agent do not collide: one per state and task
    expect(readdirSync(path.join(agentDir, 'tasks')).sort()).toEqual(
      [...ids.map((i) => `${i.replace(/\//g, '.')}_${a.stateId.slice(3, 11)}`), ...ids.map((i) => `${i.replace(/\//g, '.')}_${b.stateId.slice(3, 11)}`)].sort(),
    );
  });

  test('status of each shows the other\'s tasks as foreign: JSON lists them, the table counts them', async () => {
    const fa = a.agents[0]!.foreign ?? [];
    const fb = b.agents[0]!.foreign ?? [];
    expect(fa.map((f) => [f.task, f.state, f.pid]).sort()).toEqual(b.tasks.map((t) => [t.task, b.stateId, t.pid]).sort());
    expect(fb.map((f) => [f.task, f.state, f.pid]).sort()).toEqual(a.tasks.map((t) => [t.task, a.stateId, t.pid]).sort());
    for (const f of fa) expect(f).toMatchObject({ driver: 'process', taskState: 'running' });

    const human = await runCli(['status', ...stateA], { cwd: scratch.dir });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/FOREIGN/);
    expect(human.stdout).toContain(`3 (${b.stateId}: 3)`);
    const list = await runCli(['agents', 'list', '--json', ...stateA], { cwd: scratch.dir });
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).agents[0].foreign).toHaveLength(3);
    const listHuman = await runCli(['agents', 'list', ...stateB], { cwd: scratch.dir });
    expect(listHuman.stdout).toContain(`3 (${a.stateId}: 3)`);
  });

  test('an operation on a task only the other state runs fails naming that state; nothing happens to it', async () => {
    const r = await runCli(['plan', 'apply', solo, ...stateB, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    const bSolo = (await statusOf(stateB)).tasks.find((t) => t.task === 'solo/nap/0')!;
    expect(bSolo.state).toBe('running');
    a = await statusOf(stateA);
    expect(a.tasks.map((t) => t.task)).not.toContain('solo/nap/0');
    const logs = await runCli(['logs', 'solo/nap/0', ...stateA], { cwd: scratch.dir });
    expect(logs.code).toBe(1);
    expect(logs.stderr).toContain(`belongs to another factory state (${b.stateId})`);
    // destroying a plan that only the other state applied stops nothing of it
    const d = await runCli(['plan', 'destroy', solo, ...stateA, '--json'], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
    expect(pidAlive(bSolo.pid!)).toBe(true);
  });

  test('destroy in one state stops its tasks only: the other state\'s keep running', async () => {
    const d = await runCli(['plan', 'destroy', plan, ...stateA, '--json'], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).changes).toMatchObject({ destroy: 3 });
    for (const t of a.tasks) expect(pidAlive(t.pid!)).toBe(false);
    const after = await statusOf(stateB);
    expect(after.tasks.filter((t) => t.task.startsWith('quickstart/')).map((t) => [t.task, t.state, t.pid])).toEqual(b.tasks.map((t) => [t.task, 'running', t.pid]));
    for (const t of b.tasks) expect(pidAlive(t.pid!)).toBe(true);
    expect(after.agents[0]!.foreign ?? []).toEqual([]);
    const afterA = await statusOf(stateA);
    expect(afterA.tasks.filter((t) => t.state === 'running')).toEqual([]);
    expect((afterA.agents[0]!.foreign ?? []).map((f) => f.task).sort()).toEqual(['quickstart/echo-env/0', 'quickstart/ticker/0', 'quickstart/ticker/1', 'solo/nap/0']);
  });
});
