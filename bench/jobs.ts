/**
 * bench/jobs.ts (`npm run bench:jobs`): how close to their slots the control host starts scheduled
 * jobs, against a real `factory control serve` on a temp state with the embedded local agent (its
 * executor in a child process, as a control host runs it).
 *
 *   A. 1,000 jobs on the same slot (`*\/20 * * * * *`), observed for 3 slots: 3,000 runs, 1,000 at once.
 *   B. 100 jobs every second (`* * * * * *`) for 20 s: 2,000 runs, 100 a second.
 *
 * Each job runs `true` with resources {cpus: 0.001, mem: 1Mi} (all fit on the local agent) and keeps
 * every run of the window in its history. Per run, from the state read after the host stopped:
 * dispatch skew = dispatchedAt − slot (the start sent to the agent), start skew = startedAt − slot
 * (the executor's record of the start: when its process driver began starting the task). The host's
 * CPU (user+sys over the window) and memory (VmRSS at the end, VmHWM) come from /proc, for the host
 * and, apart, for its executor child. Beside them, the cost of one start: `run()` of the same task on
 * an idle, connected local executor, one at a time.
 *
 * BENCH_ONLY=A,B picks scenarios; BENCH_RUNS sets the runs of each (default 3; medians are printed);
 * BENCH_HOST_NODE_OPTIONS is given to the host only (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobCursor, RunRecord } from '../src/jobs/types.js';
import { FileBackend } from '../src/state/file-backend.js';
import { ExecutorClient } from '../src/transport/client.js';
import { LocalTransport } from '../src/transport/local.js';
import { BIN, startControlHost, type RunningHost } from '../test/helpers/control-host.js';

const ONLY = new Set((process.env.BENCH_ONLY ?? 'A,B').split(',').map((s) => s.trim().toUpperCase()));
const RUNS = Number(process.env.BENCH_RUNS) || 3;
const TICK = Number(process.env.BENCH_TICK_S) || 100; // clock ticks per second (getconf CLK_TCK, 100 on Linux)

/** Scenario is one workload: jobs on a schedule whose slots fall every periodMs, observed for `slots` slots. */
interface Scenario {
  key: 'A' | 'B';
  title: string;
  jobs: number;
  schedule: string;
  periodMs: number;
  slots: number;
  /** settleMs is how long after the last slot the window lasts (the runs end, are watched and recorded). */
  settleMs: number;
}

const SCENARIOS: Scenario[] = [
  { key: 'A', title: '1,000 jobs on one slot (*/20 * * * * *), 3 slots', jobs: 1000, schedule: '*/20 * * * * *', periodMs: 20_000, slots: 3, settleMs: 10_000 },
  { key: 'B', title: '100 jobs every second (* * * * * *), 20 s', jobs: 100, schedule: '* * * * * *', periodMs: 1000, slots: 20, settleMs: 600 },
];

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

function planText(s: Scenario): string {
  const lines = [`name: bench`, `project: bench`, `jobs:`];
  for (let i = 0; i < s.jobs; i++) {
    lines.push(
      `  - name: j${i}`,
      `    schedule: "${s.schedule}"`,
      `    command: ["true"]`,
      `    resources: {cpus: 0.001, mem: 1Mi}`,
      `    history: {succeeded: ${s.slots + 5}, failed: ${s.slots + 5}}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** ProcSample is what /proc says of one process: CPU seconds (own, and of its reaped children) and memory in KiB. */
interface ProcSample {
  cpuS: number;
  childrenCpuS: number;
  rssKb: number;
  hwmKb: number;
}

function procSample(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  const n = (field: number) => Number(f[field - 3]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { cpuS: (n(14) + n(15)) / TICK, childrenCpuS: (n(16) + n(17)) / TICK, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** executorPid finds the host's executor child (`node …/executors/executor.js`). */
function executorPid(hostPid: number): number | undefined {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== hostPid) continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('executor')) return Number(name);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/**
 * removeTaskCgroups removes the cgroups of the process tasks under `root` (`<workDir>/tasks/*` at any
 * depth below): the runs kept in history keep theirs, and a removed temp state would leave thousands
 * behind, each making the next cgroup mkdir slower.
 */
async function removeTaskCgroups(root: string): Promise<number> {
  let removed = 0;
  const markers: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const sub = path.join(dir, e.name);
      if (fs.existsSync(path.join(sub, 'task.json'))) markers.push(path.join(sub, 'task.json'));
      else if (depth < 4) walk(sub, depth + 1);
    }
  };
  if (fs.existsSync(root)) walk(root, 0);
  for (const m of markers) {
    let groups: string[] = [];
    try {
      groups = (JSON.parse(fs.readFileSync(m, 'utf8')) as { cgroups?: string[] }).cgroups ?? [];
    } catch {
      continue;
    }
    for (const g of groups) {
      for (let i = 0; i < 20; i++) {
        try {
          fs.rmdirSync(g);
          removed += 1;
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY') break; // gone already, or not ours to remove
          await sleep(100); // its shim has not exited yet
        }
      }
    }
  }
  return removed;
}

/** RunResult is what one run of a scenario measured. */
interface RunResult {
  runs: number;
  expected: number;
  dispatched: number;
  started: number;
  states: Record<string, number>;
  dispatch: number[];
  /** firstDispatch is, per slot, when its first start was sent: the host's own part (decide, place, claim) before any queue. */
  firstDispatch: number[];
  start: number[];
  startCost: number[];
  missed: number;
  skipped: number;
  accounted: number;
  outOfWindow: number;
  windowS: number;
  hostCpuS: number;
  execCpuS: number;
  tasksCpuS: number;
  host: ProcSample;
  exec?: ProcSample;
  applyS: number;
  notConfirmed: number;
  passFailed: number;
}

async function runScenario(s: Scenario, env: NodeJS.ProcessEnv): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-jobs-'));
  const state = path.join(dir, 'state');
  const plan = path.join(dir, 'bench.yaml');
  fs.writeFileSync(plan, planText(s));
  let host: RunningHost | undefined;
  try {
    const hostEnv = { ...env, ...(process.env.BENCH_HOST_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_HOST_NODE_OPTIONS } : {}) };
    host = await startControlHost(state, { cwd: dir, env: hostEnv, reconcileS: 0 });
    // apply right after a slot, so that it ends before the next one (the first slot of the window)
    const period = s.periodMs;
    const lead = s.periodMs >= 10_000 ? 500 : 50;
    await sleep(period - (Date.now() % period) + lead);
    const t0 = Date.now();
    const r = spawnSync(BIN, ['plan', 'apply', plan, '--state', state], { cwd: dir, env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`factory plan apply failed (${r.status}): ${r.stderr}`);
    const applied = Date.now();
    const first = Math.ceil((applied + 1) / period) * period;
    const last = first + (s.slots - 1) * period;
    const end = last + s.settleMs;
    await sleep(first - 300 - Date.now());
    const exec = executorPid(host.pid);
    const h0 = procSample(host.pid);
    const e0 = exec ? procSample(exec) : undefined;
    const w0 = Date.now();
    await sleep(end - Date.now());
    const h1 = procSample(host.pid);
    const e1 = exec ? procSample(exec) : undefined;
    const w1 = Date.now();
    const log = host.log();
    await host.stop();
    host = undefined;

    const b = await FileBackend.open(state);
    const v = b.view();
    const all = v.list('runs') as RunRecord[];
    const cursors = v.list('cursors') as JobCursor[];
    await b.close();
    const inWindow = all.filter((x) => x.trigger === 'schedule' && Date.parse(x.slot) >= first && Date.parse(x.slot) <= last);
    const states: Record<string, number> = {};
    for (const x of inWindow) states[x.state] = (states[x.state] ?? 0) + 1;
    const dispatch = inWindow.filter((x) => x.dispatchedAt).map((x) => Date.parse(x.dispatchedAt!) - Date.parse(x.slot));
    const bySlot = new Map<string, number>();
    for (const x of inWindow) if (x.dispatchedAt) bySlot.set(x.slot, Math.min(bySlot.get(x.slot) ?? Infinity, Date.parse(x.dispatchedAt) - Date.parse(x.slot)));
    const started = inWindow.filter((x) => x.startedAt);
    const start = started.map((x) => Date.parse(x.startedAt!) - Date.parse(x.slot));
    const startCost = started.filter((x) => x.dispatchedAt).map((x) => Date.parse(x.startedAt!) - Date.parse(x.dispatchedAt!));
    const sum = (k: 'missed' | 'skipped' | 'runs') => cursors.reduce((a, c) => a + c.counts[k], 0);
    return {
      runs: inWindow.length,
      expected: s.jobs * s.slots,
      dispatched: dispatch.length,
      started: start.length,
      states,
      dispatch,
      firstDispatch: [...bySlot.values()],
      start,
      startCost,
      missed: sum('missed'),
      skipped: sum('skipped'),
      accounted: sum('runs') + sum('missed') + sum('skipped'),
      outOfWindow: all.length - inWindow.length,
      windowS: (w1 - w0) / 1000,
      hostCpuS: h1.cpuS - h0.cpuS,
      execCpuS: e1 && e0 ? e1.cpuS - e0.cpuS : NaN,
      tasksCpuS: e1 && e0 ? e1.childrenCpuS - e0.childrenCpuS : NaN,
      host: h1,
      exec: e1,
      applyS: (applied - t0) / 1000,
      notConfirmed: (log.match(/not confirmed/g) ?? []).length,
      passFailed: (log.match(/pass failed/g) ?? []).length,
    };
  } finally {
    await host?.stop();
    await removeTaskCgroups(state);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** oneStart times run() of a job's task (`true`, `cpus` of cpu) on an idle, connected local executor, one at a time (median of n). */
async function oneStart(cpus: number, n = 25): Promise<{ median: number; p90: number }> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-jobs-exec-'));
  const client = await ExecutorClient.connect(new LocalTransport('local'), { workDir, agent: 'local' });
  const times: number[] = [];
  try {
    for (let i = 0; i < n + 3; i++) {
      const t = performance.now();
      const st = await client.run({
        task: `bench/one/r${i}-1`, driver: 'process', specHash: 'b', command: ['true'], env: {},
        resources: { cpus, mem: 1 << 20, disk: 0, gpus: 0, scalars: {}, ports: [] },
        labels: { plan: 'bench', group: 'one', project: 'bench', run: `bench/one/${i}` }, stopGraceMs: 0, restart: 'never', once: true,
      });
      const ms = performance.now() - t;
      if (st.error) throw new Error(`executor run: ${st.error}`);
      if (i >= 3) times.push(ms); // the first ones warm the executor
      await sleep(20);
    }
  } finally {
    await client.close();
    await removeTaskCgroups(workDir);
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  return { median: median(times), p90: quantile(times, 0.9) };
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.resolve(path.dirname(BIN), '..', 'dist', 'commands'))) throw new Error('run npm run build first');
  const env = { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', FACTORY_CONTROL_URL: '', FACTORY_CONTROL: '' };
  console.log(`bench:jobs on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, ${new Date().toISOString()}`);
  for (const cpus of [0.001, 1]) {
    const cost = await oneStart(cpus);
    console.log(`one start alone: executor run() of a \`true\` job task (cpus ${cpus}, mem 1Mi) on an idle local executor: median ${cost.median.toFixed(1)} ms, p90 ${cost.p90.toFixed(1)} ms (25 starts, one at a time)`);
  }
  for (const s of SCENARIOS) {
    if (!ONLY.has(s.key)) continue;
    console.log(`\n${s.key}. ${s.title}, ${RUNS} run(s), each a fresh host and state`);
    const results: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await runScenario(s, env);
      results.push(r);
      const q = (xs: number[]) => `p50 ${quantile(xs, 0.5)} / p99 ${quantile(xs, 0.99)} / max ${Math.max(...xs)} ms`;
      console.log(`  run ${i + 1}: ${r.runs} runs of ${r.expected} slots (${Object.entries(r.states).map(([k, n]) => `${n} ${k}`).join(', ')}), missed ${r.missed}, skipped ${r.skipped}, slots accounted ${r.accounted} (the cursors' counts, which include the ${r.outOfWindow} runs of slots outside the window); apply ${r.applyS.toFixed(1)} s`);
      console.log(`         dispatch skew ${q(r.dispatch)} (first start of a slot: ${q(r.firstDispatch)}); start skew ${q(r.start)}; started − dispatched p50 ${quantile(r.startCost, 0.5)} ms`);
      console.log(`         CPU over ${r.windowS.toFixed(1)} s: host ${r.hostCpuS.toFixed(2)} s, executor ${r.execCpuS.toFixed(2)} s (tasks reaped by it ${r.tasksCpuS.toFixed(2)} s); RSS host ${mib(r.host.rssKb)} (peak ${mib(r.host.hwmKb)}), executor ${r.exec ? `${mib(r.exec.rssKb)} (peak ${mib(r.exec.hwmKb)})` : '?'}${r.notConfirmed ? `; ${r.notConfirmed} starts not confirmed` : ''}${r.passFailed ? `; ${r.passFailed} passes failed` : ''}`);
    }
    const med = (f: (r: RunResult) => number) => median(results.map(f));
    const row = (label: string, f: (r: RunResult) => number[]) =>
      `  ${label.padEnd(36)} p50 ${med((r) => quantile(f(r), 0.5)).toFixed(0).padStart(5)} ms   p99 ${med((r) => quantile(f(r), 0.99)).toFixed(0).padStart(5)} ms   max ${med((r) => Math.max(...f(r))).toFixed(0).padStart(5)} ms`;
    console.log(`  medians of ${RUNS} run(s):`);
    console.log(row('dispatch skew (dispatchedAt − slot)', (r) => r.dispatch));
    console.log(row('first start of each slot sent', (r) => r.firstDispatch));
    console.log(row('start skew (startedAt − slot)', (r) => r.start));
    console.log(row('startedAt − dispatchedAt', (r) => r.startCost));
    console.log(`  runs ${med((r) => r.runs)} of ${s.jobs * s.slots} slots, missed ${med((r) => r.missed)}, skipped ${med((r) => r.skipped)}; host CPU ${med((r) => r.hostCpuS).toFixed(2)} s over ${med((r) => r.windowS).toFixed(1)} s (${((100 * med((r) => r.hostCpuS)) / med((r) => r.windowS)).toFixed(0)}% of a core), executor ${med((r) => r.execCpuS).toFixed(2)} s; RSS host ${mib(med((r) => r.host.rssKb))} (peak ${mib(med((r) => r.host.hwmKb))}), executor ${mib(med((r) => r.exec?.rssKb ?? NaN))} (peak ${mib(med((r) => r.exec?.hwmKb ?? NaN))})`);
    const p99 = med((r) => quantile(r.dispatch, 0.99));
    console.log(`  dispatch p99 ${p99.toFixed(0)} ms: target ≤ 100 ms ${p99 <= 100 ? 'met' : 'NOT met'}`);
  }
}

await main();
