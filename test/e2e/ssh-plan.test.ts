/**
 * Plans over SSH with the built CLI: three loopback sshd hosts (127.0.21-23.1) in two IDCs. A plan
 * with constraints lands where they say; a killed sshd and an iptables partition make the agent
 * lost and its tasks move; healing stops the stale copies, so no task runs twice and nothing is
 * left behind.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive, runCli } from '../helpers/cli.js';
import { iptablesAvailable } from '../harness/sshd.js';
import { sshTestFleet, type FleetAgent } from '../helpers/ssh-fleet.js';

const ssh = sshTestFleet('factory-ssh-plan-');
const skip = ssh.skip;
const plan = path.join(ssh.dir, 'web.yaml');
const started = new Set<number>();

const PLAN = `name: web
project: e2e
processes:
  - name: front
    count: 2
    command: ["sh", "-c", "while true; do sleep 1; done"]
    resources: {cpus: 0.5, mem: 32Mi}
    constraints: ["rack != r9"]
    strategy: spread
  - name: db
    command: ["sleep", "600"]
    resources: {cpus: 0.5, mem: 32Mi}
    constraints: ["rack == r9"]
`;

interface Status {
  agents: { name: string; idc: string; state: string; error?: string }[];
  tasks: { task: string; agent: string; state: string; pid?: number }[];
}

function agent(name: string, host: number, rack: string): FleetAgent {
  return { name, host, resources: { cpus: 4, mem: '4Gi' }, attributes: { rack } };
}

async function cli(args: string[]) {
  return runCli([...args, '--inventory', ssh.inventory, '--state', ssh.state], { timeoutMs: 60_000 });
}

async function statusJson(): Promise<Status> {
  const r = await cli(['status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as Status;
  for (const t of s.tasks) if (t.pid) started.add(t.pid);
  return s;
}

/** copies lists, per task id, the agents whose workDir holds a live copy (the hosts' truth). */
function liveCopies(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const root = path.join(ssh.dir, 'agents');
  for (const agent of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    const tasks = path.join(root, agent, 'tasks');
    for (const dir of fs.existsSync(tasks) ? fs.readdirSync(tasks) : []) {
      const pidFile = path.join(tasks, dir, 'pid');
      if (!fs.existsSync(pidFile)) continue;
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      started.add(pid);
      if (!pidAlive(pid)) continue;
      const id = dir.replace(/\./g, '/');
      out.set(id, [...(out.get(id) ?? []), agent]);
    }
  }
  return out;
}

function expectNoDuplicates(): void {
  for (const [task, agents] of liveCopies()) expect(agents, `${task} runs on ${agents.join(', ')}`).toHaveLength(1);
}

beforeAll(async () => {
  if (skip) return;
  // three fake hosts in two IDCs
  await ssh.start({
    first: 21,
    hosts: 3,
    settings: { connectTimeout: '2s', heartbeat: '1s', lostAfter: 3 },
    idcs: [
      { name: 'bj1', clusters: [{ name: 'bj1-a', agents: [agent('h1', 21, 'r1'), agent('h2', 22, 'r2')] }] },
      { name: 'sh2', clusters: [{ name: 'sh2-a', agents: [agent('h3', 23, 'r9')] }] },
    ],
  });
  fs.writeFileSync(plan, PLAN);
}, 60_000);

afterAll(async () => {
  if (!skip) {
    // every host up again, so that destroy reaches every agent
    await ssh.fleet.stop();
    await Promise.all([21, 22, 23].map((i) => ssh.fleet.startHost(i).catch(() => undefined)));
    await cli(['plan', 'destroy', plan]).catch(() => undefined);
  }
  for (const pid of started) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await ssh.stop();
}, 60_000);

describe.skipIf(skip)(`plans over SSH across two IDCs${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('apply lands where the constraints say; status shows tasks per agent; a second apply changes nothing', async () => {
    const r = await cli(['plan', 'apply', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(r.stdout) as { placements: { task: string; agent: string; idc: string }[] };
    const where = Object.fromEntries(a.placements.map((p) => [p.task, p.agent]));
    expect(where['web/db/0']).toBe('h3');
    expect(new Set([where['web/front/0'], where['web/front/1']])).toEqual(new Set(['h1', 'h2']));
    expect(a.placements.find((p) => p.task === 'web/db/0')?.idc).toBe('sh2');
    const s = await statusJson();
    expect(s.agents.map((x) => [x.name, x.idc, x.state])).toEqual([
      ['h1', 'bj1', 'ready'],
      ['h2', 'bj1', 'ready'],
      ['h3', 'sh2', 'ready'],
    ]);
    expect(s.tasks.map((t) => [t.task, t.agent, t.state])).toEqual([
      ['web/db/0', 'h3', 'running'],
      ['web/front/0', where['web/front/0'], 'running'],
      ['web/front/1', where['web/front/1'], 'running'],
    ]);
    const again = await cli(['plan', 'apply', plan, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
    expectNoDuplicates();
  });

  test('a dead sshd makes its agent lost and its task moves; healing stops the stale copy', async () => {
    const before = await statusJson();
    const onH2 = before.tasks.find((t) => t.agent === 'h2')!;
    const oldPid = onH2.pid!;
    await ssh.fleet.stopHost(22);
    const s = await statusJson();
    expect(s.agents.find((x) => x.name === 'h2')).toMatchObject({ state: 'lost' });
    expect(s.agents.find((x) => x.name === 'h2')!.error).toMatch(/connection refused/);
    expect(s.tasks.find((t) => t.task === onH2.task)).toMatchObject({ agent: 'h2', state: 'lost' });
    const r = await cli(['plan', 'apply', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/agent h2: unreachable/);
    const moved = await statusJson();
    expect(moved.tasks.find((t) => t.task === onH2.task)).toMatchObject({ agent: 'h1', state: 'running' });
    expect(pidAlive(oldPid)).toBe(true); // the host is gone from our view, not dead: its copy still runs
    await ssh.fleet.startHost(22);
    const healed = await statusJson();
    expect(healed.agents.find((x) => x.name === 'h2')).toMatchObject({ state: 'ready' });
    expect(healed.tasks.filter((t) => t.task === onH2.task)).toEqual([expect.objectContaining({ agent: 'h1', state: 'running' })]);
    expect(pidAlive(oldPid)).toBe(false);
    expectNoDuplicates();
    const again = await cli(['plan', 'apply', plan, '--json']);
    expect(JSON.parse(again.stdout).changes).toEqual({ create: 0, destroy: 0, update: 0 });
  });

  test.skipIf(!iptablesAvailable())(`an iptables partition makes the agent lost within the connect timeout; healing reconciles${!iptablesAvailable() ? ' (skipped: iptables cannot add rules here)' : ''}`, async () => {
    const before = await statusJson();
    const onH1 = before.tasks.filter((t) => t.agent === 'h1');
    expect(onH1.length).toBeGreaterThan(0);
    await ssh.fleet.partition(21);
    try {
      const t0 = Date.now();
      const r = await cli(['plan', 'apply', plan, '--json']);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/agent h1: unreachable: no SSH handshake/);
      const s = await statusJson();
      expect(s.agents.find((x) => x.name === 'h1')).toMatchObject({ state: 'lost' });
      for (const t of onH1) expect(s.tasks.find((x) => x.task === t.task)).toMatchObject({ agent: 'h2', state: 'running' });
    } finally {
      await ssh.fleet.heal(21);
    }
    const healed = await statusJson();
    expect(healed.agents.every((a) => a.state === 'ready')).toBe(true);
    for (const t of onH1) expect(pidAlive(t.pid!)).toBe(false);
    expect(healed.tasks).toHaveLength(3);
    expectNoDuplicates();
  }, 60_000);

  test('destroy leaves nothing behind on any agent', async () => {
    const r = await cli(['plan', 'destroy', plan, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(liveCopies().size).toBe(0);
    expect((await statusJson()).tasks).toEqual([]);
  });
});
