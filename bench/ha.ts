/**
 * bench/ha.ts (`npm run bench:ha`): issue 13's benchmark, on this machine's loopback.
 *
 *   1. Failover: a 3-member etcd cluster and 3 `factory control serve` hosts on it (default lease,
 *      5 s). BENCH_KILLS times (default 10): kill -9 of the leader, then the time from the kill to the
 *      new leader's first write (its `leader-elected` event, read from the state's event stream) and
 *      to its takeover pass done (`leader-takeover`); the killed host is started again each time.
 *   2. Write throughput of task updates, the etcd backend (the same 3 members) against the file
 *      backend, side by side: commits of one task each (with its event), and commits of 100 tasks.
 *   3. The cost of fencing per executor call: `inspect` on a connected local executor, in blocks
 *      alternating without an epoch and with one (checked against the newest on the agent's disk).
 *
 * BENCH_ONLY=1,2,3 picks sections. Medians (and max for failover) are printed with the load average.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StateBackend } from '../src/state/backend.js';
import { EtcdBackend } from '../src/state/etcd-backend.js';
import { FileBackend } from '../src/state/file-backend.js';
import { newStateId } from '../src/state/state-id.js';
import type { TaskRecord } from '../src/state/types.js';
import { ExecutorClient } from '../src/transport/client.js';
import { LocalTransport } from '../src/transport/local.js';
import { EtcdCluster, findEtcd } from '../test/harness/etcd.js';
import { HaHosts } from '../test/helpers/ha-jobs-hosts.js';
import { oneCluster, writeInventory } from '../test/helpers/inventory.js';

const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3').split(',').map((s) => s.trim()));
const KILLS = Number(process.env.BENCH_KILLS) || 10;
const TTL = Number(process.env.BENCH_LEASE_TTL) || 5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (ms: number) => `${Math.round(ms).toLocaleString('en-US')} ms`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const task = (id: string, n: number): TaskRecord => ({
  task: id, plan: 'bench', group: 'g', project: 'p', agent: 'local', driver: 'process', specHash: `h${n}`, state: 'running',
  resources: { cpus: 0.1, mem: 1 << 20, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: new Date().toISOString(),
});

/** failover kills the leader KILLS times and returns, per kill, kill → first write and kill → takeover done. */
async function failover(cluster: EtcdCluster, dir: string): Promise<void> {
  const location = `etcd://${cluster.members.map((m) => m.endpoint).join(',')}/bench-ha`;
  const inventory = path.join(dir, 'inventory.yaml');
  writeInventory(inventory, oneCluster('dc', 'c1', [{ name: 'a1', local: true, workDir: path.join(dir, 'agent'), resources: { cpus: 8, mem: '8Gi' } }]));
  const hosts = new HaHosts({ dir, location, inventory, leaseTtlS: TTL, reconcileS: 0 });
  const reader = await EtcdBackend.open(location);
  const seen: { kind: string; at: number; message: string }[] = [];
  reader.watch((e) => {
    if (e.kind === 'leader-elected' || e.kind === 'leader-takeover') seen.push({ kind: e.kind, at: Date.parse(e.at), message: e.message });
  });
  const firstWrite: number[] = [];
  const takeover: number[] = [];
  try {
    for (const slot of [0, 1, 2]) await hosts.start(slot);
    let leader = await hosts.waitLeader(30_000);
    for (let k = 0; k < KILLS; k++) {
      await sleep(2000 + Math.random() * 1000); // the standbys see the heartbeat move; the kill falls anywhere in a renewal period
      const slot = leader.slot;
      const killedAt = Date.now();
      await hosts.kill(leader);
      const next = await hosts.waitLeader(30_000);
      const epoch = hosts.epochOf(next)!;
      const deadline = Date.now() + 30_000;
      let elected: (typeof seen)[number] | undefined;
      let taken: (typeof seen)[number] | undefined;
      while (Date.now() < deadline && !(elected && taken)) {
        elected = seen.find((e) => e.kind === 'leader-elected' && e.message.includes(`(epoch ${epoch})`));
        taken = elected && seen.find((e) => e.kind === 'leader-takeover' && e.at >= elected!.at);
        await sleep(20);
      }
      if (!elected) throw new Error(`no leader-elected event of epoch ${epoch}`);
      firstWrite.push(elected.at - killedAt);
      if (taken) takeover.push(taken.at - killedAt);
      process.stderr.write(`kill ${k + 1}: first write of epoch ${epoch} after ${fmt(elected.at - killedAt)}${taken ? `, takeover pass done after ${fmt(taken.at - killedAt)}` : ''}\n`);
      seen.length = 0;
      await hosts.start(slot);
      leader = next;
    }
  } finally {
    await hosts.stop();
    await reader.close();
  }
  console.log(`1. failover, ${KILLS} kills -9 of the leader (3 etcd members, 3 hosts, --lease-ttl ${TTL}):`);
  console.log(`   kill → new leader's first write   median ${fmt(median(firstWrite))}   max ${fmt(Math.max(...firstWrite))}   (target: median ≤ 3,000 ms)`);
  if (takeover.length) console.log(`   kill → its takeover pass done     median ${fmt(median(takeover))}   max ${fmt(Math.max(...takeover))}`);
}

/** writes times task updates through one backend: one task a commit, then 100 tasks a commit. */
async function writes(b: StateBackend, n: number): Promise<{ oneMs: number; perSec: number; batchTasksPerSec: number }> {
  await b.lock();
  try {
    const times: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      await b.commit({ ops: [{ table: 'tasks', key: `bench/g/${i % 100}`, value: task(`bench/g/${i % 100}`, i) }], events: [{ topic: 'task', kind: 'task-started', task: `bench/g/${i % 100}`, message: 'bench' }] });
      times.push(performance.now() - s);
    }
    const one = performance.now() - t0;
    const batches = Math.max(5, Math.floor(n / 20));
    const t1 = performance.now();
    for (let j = 0; j < batches; j++) {
      await b.commit({ ops: Array.from({ length: 100 }, (_, i) => ({ table: 'tasks' as const, key: `bench/b/${i}`, value: task(`bench/b/${i}`, j) })), events: [] });
    }
    const batch = performance.now() - t1;
    return { oneMs: median(times), perSec: (n / one) * 1000, batchTasksPerSec: ((batches * 100) / batch) * 1000 };
  } finally {
    await b.unlock();
  }
}

async function throughput(cluster: EtcdCluster, dir: string): Promise<void> {
  const n = Number(process.env.BENCH_COMMITS) || 500;
  const rows: { name: string; r: Awaited<ReturnType<typeof writes>> }[] = [];
  // alternate: file, etcd, file, etcd; each figure is the median of a backend's two passes (the mean of two)
  const all: Record<string, Awaited<ReturnType<typeof writes>>[]> = { file: [], etcd: [] };
  for (let round = 0; round < 2; round++) {
    const file = await FileBackend.open(path.join(dir, `file-${round}`));
    all.file!.push(await writes(file, n));
    await file.close();
    const etcd = await EtcdBackend.open(`etcd://${cluster.members.map((m) => m.endpoint).join(',')}/bench-writes-${round}`);
    all.etcd!.push(await writes(etcd, n));
    await etcd.close();
  }
  for (const name of ['file', 'etcd']) {
    const r = all[name]!;
    rows.push({ name, r: { oneMs: median(r.map((x) => x.oneMs)), perSec: median(r.map((x) => x.perSec)), batchTasksPerSec: median(r.map((x) => x.batchTasksPerSec)) } });
  }
  console.log(`2. task updates through the state (${n} commits of one task with its event, then commits of 100 tasks; medians of 2 alternating passes):`);
  for (const { name, r } of rows) {
    console.log(`   ${name.padEnd(5)} one task a commit: median ${r.oneMs.toFixed(2)} ms, ${Math.round(r.perSec).toLocaleString('en-US')} commits/s; 100 a commit: ${Math.round(r.batchTasksPerSec).toLocaleString('en-US')} tasks/s`);
  }
  const [f, e] = [rows[0]!.r, rows[1]!.r];
  console.log(`   etcd / file: ${(e.perSec / f.perSec).toFixed(2)}× the commits/s, ${(e.batchTasksPerSec / f.batchTasksPerSec).toFixed(2)}× the tasks/s in batches`);
}

async function fencing(dir: string): Promise<void> {
  const workDir = path.join(dir, 'fence-agent');
  const client = await ExecutorClient.connect(new LocalTransport('local'), { workDir, agent: 'local', stateId: newStateId() });
  const blocks = Number(process.env.BENCH_FENCE_BLOCKS) || 10;
  const per = 200;
  const plain: number[] = [];
  const fenced: number[] = [];
  try {
    for (let b = 0; b < blocks * 2; b++) {
      const withEpoch = b % 2 === 1;
      ExecutorClient.fencingEpoch = withEpoch ? () => 42 : undefined;
      for (let i = 0; i < per; i++) {
        const t0 = performance.now();
        await client.inspect();
        (withEpoch ? fenced : plain).push(performance.now() - t0);
      }
    }
  } finally {
    ExecutorClient.fencingEpoch = undefined;
    await client.close();
  }
  const [p, f] = [median(plain), median(fenced)];
  console.log(`3. fencing per executor call (inspect on a connected local executor, ${blocks} blocks of ${per} calls each way, alternating):`);
  console.log(`   without epoch median ${(p * 1000).toFixed(0)} µs, with epoch ${(f * 1000).toFixed(0)} µs: fencing costs ${((f - p) * 1000).toFixed(0)} µs a call (target ≤ 1,000 µs)`);
}

async function main(): Promise<void> {
  if (!findEtcd() && (ONLY.has('1') || ONLY.has('2'))) throw new Error('bench:ha needs etcd (apt-get install -y etcd-server)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-ha-'));
  console.log(`bench:ha on ${os.cpus().length} cores, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${new Date().toISOString()}`);
  let cluster: EtcdCluster | undefined;
  try {
    if (ONLY.has('1') || ONLY.has('2')) cluster = await EtcdCluster.start({ members: 3 });
    if (ONLY.has('1')) await failover(cluster!, dir);
    if (ONLY.has('2')) await throughput(cluster!, dir);
    if (ONLY.has('3')) await fencing(dir);
  } finally {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

await main();
