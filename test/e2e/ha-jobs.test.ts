/**
 * Jobs across failovers on etcd (issue 13, test 4): 20 per-second jobs run by three real control
 * hosts on one state in a real 3-member etcd cluster on loopback (lease 2 s), while the leader is
 * killed with SIGKILL five times at seeded moments (each killed host is started again, so three
 * stay). Then, from the state (read from etcd) and from the lines the runs' own processes wrote: no
 * slot's command ran twice across hosts, and every slot of each job from its creation to its cursor
 * is accounted for exactly once (a run, or missed, or skipped), the counts adding up. Each new
 * leader's takeover pass also finds what happened while no host led: a plan task whose process was
 * killed before the first failover is recorded failed by the next leader, though no host supervises
 * (--reconcile-interval 0). Skipped without etcd, failed under CI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { jobViewsOf } from '../../src/jobs/view.js';
import type { JobCursor, JobRecord, RunRecord } from '../../src/jobs/types.js';
import { EtcdBackend } from '../../src/state/etcd-backend.js';
import { EtcdCluster, etcdSkipReason } from '../harness/etcd.js';
import { pidAlive, runCli, scratchDir, sleepersOf, waitFor } from '../helpers/cli.js';
import { HaHosts, type HaHost } from '../helpers/ha-jobs-hosts.js';
import { oneCluster, writeInventory } from '../helpers/inventory.js';
import { killRuns, type JobEvent } from '../helpers/jobs-scratch.js';
import { accountJob, addTally, childrenOf, emptyTally, random } from '../helpers/jobs-trial.js';

const skip = etcdSkipReason();
const JOBS = 20;
const KILLS = 5;
const LEASE_TTL_S = 2;
const MARK = '6113'; // the plan task's sleep argument: its process is the one with this argv
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** every event and every run is kept: the accounting reads them all */
const KEEP_ALL = { FACTORY_EVENTS_PER_SUBJECT: '100000', FACTORY_EVENTS_MAX: '1000000' };

const scratch = scratchDir('factory-ha-jobs-');
const workDir = path.join(scratch.dir, 'agent');
const executors = new Set<number>();
let cluster: EtcdCluster | undefined;
let hosts: HaHosts | undefined;

/** naps lists the pids of this test's `sleep MARK` processes. */
const naps = (): number[] => sleepersOf(MARK);

afterAll(async () => {
  for (const h of hosts?.live ?? []) await hosts!.kill(h);
  for (const pid of executors) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  killRuns(workDir);
  for (const pid of naps()) process.kill(pid, 'SIGKILL');
  await cluster?.stop();
  scratch.cleanup();
}, 60_000);

/** Failover is one kill of the leader and who led next. */
interface Failover {
  killedAt: number;
  from: number;
  to: number;
}

describe.skipIf(skip !== undefined)(`jobs across failovers on a 3-member etcd cluster${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test(`20 per-second jobs while the leader is killed ${KILLS} times: no slot ran twice, every slot accounted for`, async () => {
    const seed = Number(process.env.HA_JOBS_SEED ?? Date.now() % 1_000_000);
    const rand = random(seed);
    const why = `seed ${seed} (HA_JOBS_SEED=${seed} repeats the moments)`;
    const inv = path.join(scratch.dir, 'inventory.yaml');
    // one agent, one work dir: whichever host leads reaches the same executor folder
    writeInventory(inv, oneCluster('dc', 'c1', [{ name: 'a1', local: true, workDir, resources: { cpus: 64, mem: '64Gi' } }]));
    const out = path.join(scratch.dir, 'out');
    fs.mkdirSync(out);
    const names = Array.from({ length: JOBS }, (_, i) => `j${String(i).padStart(2, '0')}`);
    // each run writes its id, then sleeps 0 to 1.5 s (from its pid)
    const jobYaml = (name: string) => `  - name: ${name}
    schedule: "* * * * * *"
    command: ${JSON.stringify(['sh', '-c', `echo "$FACTORY_RUN" >> ${path.join(out, name)}; n=$(( $$ % 16 )); sleep $((n / 10)).$((n % 10))`])}
    resources: {cpus: 0.01, mem: 16Mi}
    history: {succeeded: 1000, failed: 1000}
`;
    const plan = path.join(scratch.dir, 'storm.yaml');
    fs.writeFileSync(plan, `name: storm\nprocesses:\n  - name: nap\n    command: [sleep, "${MARK}"]\n    resources: {cpus: 0.01, mem: 1Mi}\njobs:\n${names.map(jobYaml).join('')}`);

    cluster = await EtcdCluster.start({ members: 3 });
    const location = cluster.url('hajobs');
    const hs = (hosts = new HaHosts({ dir: scratch.dir, location, inventory: inv, leaseTtlS: LEASE_TTL_S, reconcileS: 0, env: KEEP_ALL }));
    await Promise.all([0, 1, 2].map((i) => hs.start(i)));
    await hs.waitLeader(20_000);
    const applied = await runCli(['plan', 'apply', plan, ...hs.remote(), '--json'], { cwd: scratch.dir, timeoutMs: 60_000 });
    expect(applied.code, applied.stderr + applied.stdout).toBe(0);
    expect(await waitFor(() => naps().length === 1, 10_000, 20)).toBe(true);

    const failovers: Failover[] = [];
    for (let k = 0; k < KILLS; k++) {
      const leader = await hs.waitLeader(20_000);
      const from = hs.epochOf(leader)!;
      // its takeover pass done (each leader's is accounted for below), then a moment among the slots
      expect(await waitFor(() => /takeover: asked/.test(leader.log()), 20_000, 20), leader.log()).toBe(true);
      await sleep(2500 + rand() * 2500);
      // before the first failover the plan task's process dies, and no host supervises: only the
      // next leader's takeover pass can see it
      if (k === 0) for (const pid of naps()) process.kill(pid, 'SIGKILL');
      for (const pid of childrenOf(leader.pid)) executors.add(pid);
      const killedAt = Date.now();
      await hs.kill(leader);
      await hs.start(leader.slot);
      const next: HaHost = await hs.waitLeader(20_000);
      failovers.push({ killedAt, from, to: hs.epochOf(next)! });
    }
    await sleep(3000);
    for (const h of hs.live) for (const pid of childrenOf(h.pid)) executors.add(pid);
    await hs.stop();
    // the runs still going end by themselves (1.5 s at most); their lines are then written
    await sleep(1600);

    // the state as the last leader left it, read from etcd (nobody writes any more)
    const state = await EtcdBackend.open(location, { retention: { maxEvents: 1_000_000, maxAgeMs: 24 * 3600_000, perSubject: 100_000 } });
    try {
      const view = state.view();
      const events = state.eventsSince(0).events as JobEvent[];
      const runs = view.list('runs') as RunRecord[];
      const cursors = new Map((view.list('cursors') as JobCursor[]).map((c) => [c.id, c]));
      const jobViews = jobViewsOf(view.list('jobs') as JobRecord[], (id) => cursors.get(id), runs);
      const createdAt = Date.parse(events.find((e) => e.kind === 'plan-applied')!.at);

      let totals = emptyTally();
      for (const name of names) {
        const id = `storm/${name}`;
        const jobView = jobViews.find((j) => j.id === id)!;
        const lines = fs.existsSync(path.join(out, name)) ? fs.readFileSync(path.join(out, name), 'utf8').split('\n').filter((l) => l !== '') : [];
        const tally = accountJob({ id, view: jobView, runs: runs.filter((r) => r.job === id).sort((a, b) => a.slot.localeCompare(b.slot)), events: events.filter((e) => e.job === id), lines, createdAt, why });
        totals = addTally(totals, tally);
      }

      // each failover: the new leader's first write (leader-elected), then its takeover pass
      const elected = (epoch: number) => events.find((e) => e.kind === 'leader-elected' && e.message.includes(`(epoch ${epoch})`));
      const takeovers = failovers.map((f) => {
        const e = elected(f.to);
        expect(e, `no leader-elected event of epoch ${f.to}`).toBeDefined();
        const pass = events.find((x) => x.kind === 'leader-takeover' && x.rev > e!.rev);
        expect(pass, `no takeover pass after epoch ${f.to} was elected`).toBeDefined();
        return { from: f.from, to: f.to, electedMs: Date.parse(e!.at) - f.killedAt, passMs: Date.parse(pass!.at) - f.killedAt };
      });
      expect(new Set(failovers.map((f) => f.to)).size).toBe(KILLS);
      // the plan task killed before the first failover: recorded by the second leader's takeover pass
      const nap = view.get('tasks', 'storm/nap/0');
      expect(nap, JSON.stringify(view.list('tasks'))).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
      const failed = events.find((e) => e.kind === 'task-failed' && e.task === 'storm/nap/0');
      expect(failed?.rev).toBeGreaterThan(elected(failovers[0]!.to)!.rev);
      expect(events.filter((e) => e.kind === 'leader-takeover').length).toBe(KILLS + 1);

      const fmt = (ms: number[]) => `${ms.join(', ')} ms (median ${[...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]})`;
      console.info(
        [
          `jobs across ${KILLS} leader kills (3 etcd members, 3 hosts, lease ${LEASE_TTL_S} s), ${why}:`,
          `  slots ${totals.slots}, runs ${totals.runs}, missed ${totals.missed} (${totals.runMissed} of them claimed then too late), skipped ${totals.skipped}, ran twice ${totals.ranTwice}`,
          `  succeeded ${totals.succeeded}, failed ${totals.failed}, still going at the end ${totals.going}, adopted by a new leader ${totals.adopted}`,
          `  epochs ${takeovers.map((t) => `${t.from}→${t.to}`).join(', ')}`,
          `  kill → new leader's first write: ${fmt(takeovers.map((t) => t.electedMs))}`,
          `  kill → its takeover pass done: ${fmt(takeovers.map((t) => t.passMs))}`,
        ].join('\n'),
      );
      expect(totals.ranTwice).toBe(0);
      expect(totals.runs).toBeGreaterThan(0);
      expect(totals.runs + totals.missed + totals.skipped).toBe(totals.slots);
      expect(totals.missed).toBeGreaterThan(0); // each failover misses the slots while no host led
      for (const t of takeovers) expect(t.electedMs, `failover ${t.from}→${t.to}`).toBeLessThan(10_000);
    } finally {
      await state.close();
    }
  }, 180_000);
});
