/**
 * The operator's whole loop with the built CLI and real processes: apply → status → re-apply (no
 * change) → kill a task by hand → status shows it → apply restarts it → logs → destroy → nothing left.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, readdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { applyJournalSync } from '../../src/state/read-sync.js';
import { pidAlive, runCli, scratchDir, waitFor } from '../helpers/cli.js';

const PLAN = `# yaml-language-server: $schema=../schema/plan.schema.json
name: lifecycle
project: e2e
processes:
  - name: ticker
    count: 2
    command: ["sh", "-c", "echo started $FACTORY_TASK; while true; do echo tick; sleep 1; done"]
    resources: {cpus: 0.1, mem: 32Mi}
  - name: errlog
    command: ["sh", "-c", "echo to-stderr >&2; exec sleep 600"]
    resources: {cpus: 0.1, mem: 16Mi}
`;

interface StatusJson {
  agents: { name: string; idc: string; cluster: string; state: string; resources: { cpus: number; mem: number }; attributes: Record<string, string> }[];
  tasks: { task: string; group: string; project: string; agent: string; driver: string; state: string; pid?: number; limits?: string }[];
}

const scratch = scratchDir();
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'lifecycle.yaml');
const started = new Set<number>();

async function statusJson(): Promise<StatusJson> {
  const r = await runCli(['status', '--json', '--state', state], { cwd: scratch.dir });
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as StatusJson;
  for (const t of s.tasks) if (t.pid) started.add(t.pid);
  return s;
}

beforeAll(() => {
  writeFileSync(plan, PLAN);
});

afterAll(async () => {
  await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir }).catch(() => undefined);
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

describe('factory plan apply / status / logs / destroy with real processes', () => {
  test('diff before anything runs shows three creates and exits 2 with --detailed-exitcode', async () => {
    const r = await runCli(['plan', 'diff', plan, '--state', state, '--json', '--detailed-exitcode'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(2);
    const d = JSON.parse(r.stdout);
    expect(d.changes).toEqual({ create: 3, destroy: 0, update: 0 });
    expect(d.placements).toHaveLength(3);
    expect(d.placements[0]).toMatchObject({ task: 'lifecycle/errlog/0', group: 'errlog', project: 'e2e', idc: 'local', cluster: 'local', agent: 'local' });
    expect(d.placements[0].resources).toMatchObject({ cpus: 0.1, mem: 16 * 1024 * 1024 });
    expect(d.unplaced).toEqual([]);
  });

  test('apply starts the processes, which outlive the command', async () => {
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout);
    expect(a.changes).toEqual({ create: 3, destroy: 0, update: 0 });
    expect(a.ok).toBe(true);
    const s = await statusJson();
    expect(s.agents).toHaveLength(1);
    expect(s.agents[0]).toMatchObject({ name: 'local', idc: 'local', cluster: 'local', state: 'ready' });
    expect(s.agents[0]!.resources.cpus).toBeGreaterThan(0);
    expect(s.agents[0]!.attributes.hostname).toBeTruthy();
    expect(s.tasks.map((t) => t.task)).toEqual(['lifecycle/errlog/0', 'lifecycle/ticker/0', 'lifecycle/ticker/1']);
    for (const t of s.tasks) {
      expect(t).toMatchObject({ agent: 'local', driver: 'process', state: 'running', project: 'e2e' });
      expect(t.pid).toBeGreaterThan(1);
      expect(pidAlive(t.pid!)).toBe(true);
      expect(['cgroup-v1', 'cgroup-v2', 'rlimit']).toContain(t.limits);
    }
    const stateFile = path.join(state, 'state.json');
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
  });

  test('a second apply reports no changes and keeps the same pids', async () => {
    const before = await statusJson();
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
    const human = await runCli(['plan', 'diff', plan, '--state', state, '--detailed-exitcode'], { cwd: scratch.dir });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/No changes\./);
    const after = await statusJson();
    expect(after.tasks.map((t) => t.pid)).toEqual(before.tasks.map((t) => t.pid));
  });

  test('logs shows a task output, from stdout and stderr', async () => {
    await waitFor(async () => (await runCli(['logs', 'lifecycle/ticker/0', '--state', state], { cwd: scratch.dir })).stdout.includes('tick'), 10_000, 300);
    const out = await runCli(['logs', 'lifecycle/ticker/0', '--state', state], { cwd: scratch.dir });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^started lifecycle\/ticker\/0\ntick\n/);
    // --json: one object a line, on stdout, for both streams
    const asJson = await runCli(['logs', 'lifecycle/ticker/0', '--json', '--state', state], { cwd: scratch.dir });
    expect(asJson.code, asJson.stderr).toBe(0);
    const objs = asJson.stdout.trim().split('\n').map((l) => JSON.parse(l) as { task: string; stream: string; line: string });
    expect(objs[0]).toEqual({ task: 'lifecycle/ticker/0', stream: 'stdout', line: 'started lifecycle/ticker/0' });
    expect(objs[1]).toMatchObject({ stream: 'stdout', line: 'tick' });
    const err = await runCli(['logs', 'errlog/0', '--state', state], { cwd: scratch.dir });
    expect(err.code, err.stderr).toBe(0);
    expect(err.stderr).toContain('to-stderr');
    const missing = await runCli(['logs', 'nope/0', '--state', state], { cwd: scratch.dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no task 'nope\/0' in the state/);
  });

  test('logs -f follows new output until interrupted', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers/cli.js');
    const child = spawn(BIN, ['logs', '-f', '--tail', '1', 'lifecycle/ticker/1', '--state', state], { cwd: scratch.dir, env: { ...process.env, CI: '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const seen = await waitFor(() => (out.match(/tick/g) ?? []).length >= 3, 15_000);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(seen, out).toBe(true);
    expect(code).toBe(0);
  });

  test('a process killed by hand shows as failed, and the next apply restarts it', async () => {
    const before = await statusJson();
    const victim = before.tasks.find((t) => t.task === 'lifecycle/ticker/1')!;
    process.kill(victim.pid!, 'SIGKILL');
    expect(await waitFor(() => !pidAlive(victim.pid!), 5_000)).toBe(true);
    const s = await statusJson();
    const dead = s.tasks.find((t) => t.task === 'lifecycle/ticker/1')!;
    expect(dead.state).toBe('failed');
    expect(dead.pid).toBeUndefined();
    const human = await runCli(['status', '--state', state], { cwd: scratch.dir });
    expect(human.stdout).toMatch(/lifecycle\/ticker\/1\s+local\s+process\s+-\s+failed.*killed by SIGKILL/);
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout);
    expect(a.changes).toEqual({ create: 1, destroy: 0, update: 0 });
    expect(a.placements.find((p: { task: string }) => p.task === 'lifecycle/ticker/1').action).toBe('restart');
    const after = await statusJson();
    const back = after.tasks.find((t) => t.task === 'lifecycle/ticker/1')!;
    expect(back.state).toBe('running');
    expect(back.pid).not.toBe(victim.pid);
    expect(pidAlive(back.pid!)).toBe(true);
    // the others were not touched
    expect(after.tasks.find((t) => t.task === 'lifecycle/ticker/0')!.pid).toBe(before.tasks.find((t) => t.task === 'lifecycle/ticker/0')!.pid);
  });

  test('destroy stops everything and leaves no process and no pid file behind', async () => {
    const s = await statusJson();
    const pids = s.tasks.map((t) => t.pid!);
    const r = await runCli(['plan', 'destroy', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.changes).toEqual({ create: 0, destroy: 3, update: 0 });
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
    const after = await statusJson();
    expect(after.tasks).toEqual([]);
    const agentDir = path.join(state, 'agents', 'local', 'tasks');
    const left = existsSync(agentDir) ? readdirSync(agentDir) : [];
    expect(left).toEqual([]);
    // the snapshot with its journal applied: what any reader of the state sees
    const stateDoc = applyJournalSync(state, JSON.parse(readFileSync(path.join(state, 'state.json'), 'utf8')));
    expect(stateDoc.plans).toEqual({});
    expect(stateDoc.tasks).toEqual({});
    expect(stateDoc.events.map((e) => e.kind)).toContain('plan-destroyed');
    const again = await runCli(['plan', 'destroy', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
  });
});
