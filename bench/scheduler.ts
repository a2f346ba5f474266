/**
 * The scheduler benchmark (`npm run bench`): for 1k agents × 10k tasks and 10k agents × 100k tasks of
 * identical agents, and for a heterogeneous fleet of 10k agents × 100k tasks (issue 15: three agent
 * sizes, rack and ssd attributes, 30% of the groups constrained) written as block YAML and as JSON, it
 * generates an inventory and plans into a temp folder (bench/generate.ts), loads them through the
 * real spec loaders, runs schedule() several times and prints the medians of: placements per second,
 * p99 per-placement latency, packing efficiency (the lower bound — the fewest agents, largest first,
 * whose capacity covers the demand in every dimension — over the agents used), stranded capacity and
 * peak RSS. It then times the real `factory plan diff --offline --json` end to end (median of several
 * runs) with its split: start (node + oclif), parse and validate, snapshot, schedule, output (the
 * DiffResult document and its JSON on stdout), from the phases plan-prepare.ts publishes. Last, it
 * reports how much of perfectly packable instances' demand is placed (bench/packable.ts).
 *
 * Each size runs in its own child process so that peak RSS is that size's own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_AGENT, generateFleet, generateInputs, type BenchSize, type FleetSize } from './generate.js';
import { packingFigures } from './packable.js';
import { splitTotal } from '../src/scheduler/split.js';
import { PLAN_PHASES_CHANNEL } from '../src/control/plan-prepare.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const E2E_RUNS = Number(process.env.BENCH_E2E_RUNS ?? 3);

/** SIZES are the benchmark's configurations: identical agents, then heterogeneous fleets (FleetSize). */
export const SIZES: Array<BenchSize | FleetSize> = [
  { label: '1k agents × 10k tasks', agents: 1_000, tasks: 10_000, clusters: 4, fill: 0.9 },
  { label: '10k agents × 100k tasks', agents: 10_000, tasks: 100_000, clusters: 20, fill: 0.9 },
  { label: '10k heterogeneous agents × 100k tasks, block YAML', agents: 10_000, groups: 1_000, perGroup: 100, constrained: 0.3, fill: 0.9, format: 'yaml' },
  { label: '10k heterogeneous agents × 100k tasks, JSON', agents: 10_000, groups: 1_000, perGroup: 100, constrained: 0.3, fill: 0.9, format: 'json' },
];

/** Inputs are the files of one generated size: the inventory and the plan files or folders. */
interface Inputs {
  inventory: string;
  plans: string[];
}

/** Split is where the end-to-end time of `plan diff` goes: wall and CPU ms per part. */
type Split = Record<'start' | 'load' | 'snapshot' | 'schedule' | 'output', { wall: number; cpu: number }>;

/** median of a list of numbers. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? 0;
}

function quantile(xs: Float64Array, q: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

interface SizeResult {
  label: string;
  placed: number;
  unplaced: number;
  scheduleMs: number;
  placementsPerSec: number;
  p99us: number;
  agentsUsed: number;
  lowerBound: number;
  efficiency: number;
  stranded: Record<string, number>;
  peakRssMB: number;
  e2eMs?: number;
  e2eRssMB?: number;
  e2eCpuMs?: number;
  split?: Split;
}

/** lowerBoundAgents is the fewest agents (largest first, per dimension) whose capacity covers the demand: the packing bound. */
function lowerBoundAgents(capacities: { cpus: number; mem: number }[], demand: { cpus: number; mem: number }): number {
  let bound = 0;
  for (const d of ['cpus', 'mem'] as const) {
    const caps = capacities.map((c) => c[d]).sort((a, b) => b - a);
    let sum = 0;
    let n = 0;
    while (n < caps.length && sum < demand[d] - 1e-9) sum += caps[n++] ?? 0;
    bound = Math.max(bound, n);
  }
  return bound;
}

/** runChild schedules one generated size in this process and prints a SizeResult as JSON. */
async function runChild(files: Inputs, label: string): Promise<void> {
  const { loadPlans, resolveInventory } = await import('../src/spec/index.js');
  const { schedule } = await import('../src/scheduler/index.js');
  const { desiredGroupsOf } = await import('../src/control/desired.js');
  const { snapshotOf } = await import('../src/control/snapshot.js');
  const { MemoryBackend } = await import('../src/state/memory-backend.js');
  const { StateWork } = await import('../src/state/work.js');
  const inv = await resolveInventory(files.inventory);
  const plans = await loadPlans(files.plans);
  const { agents, actual } = snapshotOf(inv, new StateWork(new MemoryBackend()), { offline: true });
  const groups = desiredGroupsOf(plans);
  const total = groups.reduce((s, g) => s + g.count, 0);
  const times: number[] = [];
  const p99s: number[] = [];
  let plan: ReturnType<typeof schedule> | undefined;
  for (let r = 0; r < RUNS; r++) {
    const lat = new Float64Array(total);
    let n = 0;
    let last = 0;
    const t0 = performance.now();
    last = t0;
    plan = schedule({
      agents, groups, actual, plans: plans.map((p) => p.name), seed: 1, projects: inv.projects,
      observer: { decided: () => { const now = performance.now(); if (n < lat.length) lat[n++] = now - last; last = now; } },
    });
    times.push(performance.now() - t0);
    p99s.push(quantile(lat.subarray(0, n), 0.99) * 1000);
  }
  if (!plan) throw new Error('no runs');
  const used = new Set(plan.create.map((p) => p.agent)).size;
  let cpus = 0;
  let mem = 0;
  for (const p of plan.create) {
    cpus += p.resources.cpus;
    mem += p.resources.mem;
  }
  const lowerBound = lowerBoundAgents(agents.map((a) => a.capacity), { cpus, mem });
  const scheduleMs = median(times);
  const out: SizeResult = {
    label,
    placed: plan.create.length,
    unplaced: plan.unplaced.length,
    scheduleMs,
    placementsPerSec: (plan.create.length + plan.unplaced.length) / (scheduleMs / 1000),
    p99us: median(p99s),
    agentsUsed: used,
    lowerBound,
    efficiency: used === 0 ? 1 : lowerBound / used,
    stranded: plan.stranded,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/**
 * timeCli runs `factory plan diff --offline --json` end to end; returns wall ms, the child's peak RSS
 * and CPU time, and the split of its time (from the phases plan-prepare.ts publishes).
 */
async function timeCli(dir: string, files: Inputs): Promise<{ ms: number; rssMB: number; cpuMs: number; split: Split }> {
  const wrapper = join(dir, 'rss-wrapper.mjs');
  await writeFile(
    wrapper,
    [
      "import diagnostics from 'node:diagnostics_channel';",
      'const phases = {};',
      `diagnostics.subscribe(${JSON.stringify(PLAN_PHASES_CHANNEL)}, (m) => { phases[m.phase] = m; });`,
      "process.on('exit', () => { const u = process.resourceUsage(); const cpu = (u.userCPUTime + u.systemCPUTime) / 1000; process.stderr.write('\\nBENCH_RSS ' + u.maxRSS + ' BENCH_CPU ' + cpu * 1000 + ' BENCH_PHASES ' + JSON.stringify({ ...phases, exit: performance.now(), cpuExit: cpu }) + '\\n'); });",
      `await import(${JSON.stringify(join(ROOT, 'bin/run.cjs'))});`,
    ].join('\n'),
  );
  const args = [wrapper, 'plan', 'diff', '--offline', '--json', '--state', join(dir, 'state'), '--inventory', files.inventory, ...files.plans];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { maxBuffer: 1 << 30, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`plan diff failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  JSON.parse(r.stdout);
  const rss = Number(/BENCH_RSS (\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
  const cpuMs = Number(/BENCH_CPU (\d+)/.exec(r.stderr)?.[1] ?? 0) / 1000;
  type Phase = { start: number; end: number; cpuStart: number; cpuEnd: number };
  const p = JSON.parse(/BENCH_PHASES (.*)/.exec(r.stderr)?.[1] ?? '{}') as Partial<Record<'load' | 'snapshot' | 'schedule' | 'view', Phase>> & { exit: number; cpuExit: number };
  const took = (x?: Phase) => ({ wall: x ? x.end - x.start : 0, cpu: x ? x.cpuEnd - x.cpuStart : 0 });
  // start: from the process's start to loading (node, oclif, the command); output: the document and its JSON on stdout
  const view = took(p.view);
  const split: Split = {
    start: { wall: p.load?.start ?? 0, cpu: p.load?.cpuStart ?? 0 },
    load: took(p.load),
    snapshot: took(p.snapshot),
    schedule: took(p.schedule),
    output: { wall: view.wall + p.exit - (p.view?.end ?? p.exit), cpu: view.cpu + p.cpuExit - (p.view?.cpuEnd ?? p.cpuExit) },
  };
  return { ms, rssMB: rss, cpuMs, split };
}

function fmtStranded(s: Record<string, number>): string {
  return Object.entries(s)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => (k === 'mem' || k === 'disk' ? `${k} ${(v / 1024 ** 3).toFixed(0)}Gi` : `${k} ${Number(v.toFixed(2))}`))
    .join(', ') || 'none';
}

/** splitFigures times the level-2 resource plan: 10,000 cores over three VM shapes on 300 agents. */
function splitFigures(): string {
  const GiB = 1024 ** 3;
  const agents = Array.from({ length: 300 }, (_, i) => ({ id: i, free: [48, 256 * GiB, 0, 0] }));
  const shapes = [
    { cpus: 48, mem: 96 * GiB, disk: 0, gpus: 0 },
    { cpus: 8, mem: 16 * GiB, disk: 0, gpus: 0 },
    { cpus: 6, mem: 12 * GiB, disk: 0, gpus: 0 },
  ];
  const times: number[] = [];
  let vms = 0;
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    const r = splitTotal(10_000, shapes, agents);
    times.push(performance.now() - t0);
    if (!r.ok) throw new Error('the 10,000-core split failed');
    vms = r.vms.length;
  }
  return `resource plan: 10,000 cores over shapes 48/8/6 on 300 agents → ${vms} VMs, median ${median(times).toFixed(2)} ms, max ${Math.max(...times).toFixed(2)} ms (21 runs; target ≤ 10 ms)`;
}

const isFleet = (size: BenchSize | FleetSize): size is FleetSize => 'groups' in size;

async function main(): Promise<void> {
  const [mode, files, label] = process.argv.slice(2);
  if (mode === '--child' && files && label) return runChild(JSON.parse(files) as Inputs, label);
  const only = process.env.BENCH_ONLY; // a substring of the labels to run, e.g. 'JSON'
  const results: SizeResult[] = [];
  for (const size of SIZES) {
    if (only && !size.label.includes(only)) continue;
    const dir = await mkdtemp(join(tmpdir(), 'factory-bench-'));
    try {
      let files: Inputs;
      if (isFleet(size)) {
        const gen = await generateFleet(dir, size);
        files = { inventory: gen.inventory, plans: gen.planFiles };
        process.stderr.write(`${size.label}: ${gen.tasks} tasks asking ${gen.demand.cpus} cpus of ${gen.capacity.cpus} (${((100 * gen.demand.cpus) / gen.capacity.cpus).toFixed(1)}%); inventory ${(gen.bytes.inventory / 1e6).toFixed(1)} MB, plans ${(gen.bytes.plans / 1e6).toFixed(2)} MB\n`);
      } else {
        const gen = await generateInputs(dir, size);
        files = { inventory: gen.inventory, plans: [gen.plansDir] };
        process.stderr.write(`${size.label}: ${gen.tasks} tasks asking ${gen.demand.cpus} cpus of ${size.agents * BENCH_AGENT.cpus} (${((100 * gen.demand.cpus) / (size.agents * BENCH_AGENT.cpus)).toFixed(1)}%)\n`);
      }
      const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(files), size.label], { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26 });
      if (child.status !== 0) throw new Error(child.stderr);
      const res = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as SizeResult;
      if (size.agents >= 10_000 || process.env.BENCH_E2E_ALL) {
        const runs: Awaited<ReturnType<typeof timeCli>>[] = [];
        for (let r = 0; r < E2E_RUNS; r++) runs.push(await timeCli(dir, files));
        res.e2eMs = median(runs.map((x) => x.ms));
        res.e2eRssMB = median(runs.map((x) => x.rssMB));
        res.e2eCpuMs = median(runs.map((x) => x.cpuMs));
        const part = (k: keyof Split) => ({ wall: median(runs.map((x) => x.split[k].wall)), cpu: median(runs.map((x) => x.split[k].cpu)) });
        res.split = { start: part('start'), load: part('load'), snapshot: part('snapshot'), schedule: part('schedule'), output: part('output') };
      }
      results.push(res);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const lines = [
    `| size | placements/s | p99 per placement | schedule() | packing efficiency | stranded | peak RSS | \`plan diff --offline --json\` end to end |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map(
      (r) =>
        `| ${r.label} | ${Math.round(r.placementsPerSec).toLocaleString('en-US')} | ${r.p99us.toFixed(1)} µs | ${r.scheduleMs.toFixed(0)} ms (${r.placed} placed, ${r.unplaced} unplaced) | ${(100 * r.efficiency).toFixed(1)}% (${r.agentsUsed} agents used, bound ${r.lowerBound}) | ${fmtStranded(r.stranded)} | ${r.peakRssMB.toFixed(0)} MB | ${r.e2eMs === undefined ? '—' : `${r.e2eMs.toFixed(0)} ms wall (${r.e2eCpuMs?.toFixed(0)} ms CPU), ${r.e2eRssMB?.toFixed(0)} MB RSS`} |`,
    ),
  ];
  const split = results.filter((r) => r.split);
  if (split.length > 0) {
    lines.push(
      '',
      '`plan diff --offline --json` end to end, split: wall ms (CPU ms), medians; start is node + oclif + the command up to loading, output the DiffResult document and its JSON on stdout',
      '',
      '| size | start | parse and validate | snapshot | schedule | output | total |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...split.map((r) => {
        const f = (x?: { wall: number; cpu: number }) => (x ? `${x.wall.toFixed(0)} (${x.cpu.toFixed(0)})` : '—');
        return `| ${r.label} | ${f(r.split?.start)} | ${f(r.split?.load)} | ${f(r.split?.snapshot)} | ${f(r.split?.schedule)} | ${f(r.split?.output)} | ${f({ wall: r.e2eMs ?? 0, cpu: r.e2eCpuMs ?? 0 })} |`;
      }),
    );
  }
  lines.push('', splitFigures());
  lines.push('', packingFigures());
  const load = (await import('node:os')).loadavg()[0]?.toFixed(1);
  process.stdout.write(`${lines.join('\n')}\n\nmedians of ${RUNS} schedule() runs and ${E2E_RUNS} CLI runs; node ${process.version}; load average ${load} on ${(await import('node:os')).cpus().length} cores\n`);
}

await main();
