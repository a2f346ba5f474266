/**
 * Perfectly packable scheduler inputs (issue 15): every agent's capacity is cut into tasks of mixed
 * shapes (cpu-heavy, mem-heavy, balanced) whose sum is exactly the agent's capacity, the tasks are
 * shuffled and dealt to plans, and tasks of one shape in one plan form a group. 100% of the demand
 * fits, so the share placed measures how well the scheduler packs. Deterministic for a seed.
 *
 * `packingFigures()` schedules several sizes and seeds and prints, per instance, the share of the
 * cpus and mem placed and the time spent (`npm run bench` prints it).
 */
import { schedule } from '../src/scheduler/index.js';
import type { AgentSnapshot, DesiredGroup, SchedulePlan, SchedulerInput } from '../src/scheduler/index.js';
import { mulberry32 } from './rng.js';

const GiB = 1024 ** 3;

/** PACKABLE_AGENT_SIZES are the agent sizes drawn from: [cpus, GiB of mem]. */
export const PACKABLE_AGENT_SIZES: ReadonlyArray<readonly [number, number]> = [
  [48, 192],
  [32, 256],
  [64, 256],
];

/** PACKABLE_SHAPES are the task shapes agents are cut into: [cpus, GiB of mem], cpu-heavy, mem-heavy and balanced. */
export const PACKABLE_SHAPES: ReadonlyArray<readonly [number, number]> = [
  // cpu-heavy (≤ 2 GiB per cpu)
  [16, 16], [8, 8], [8, 16], [6, 12], [4, 4], [2, 2],
  // mem-heavy (≥ 8 GiB per cpu)
  [8, 128], [4, 64], [2, 32], [2, 24], [1, 16], [1, 8],
  // balanced
  [12, 48], [8, 32], [4, 16],
];

/** FILLER_MAX_GIB is the most mem per cpu of the 1-cpu tasks that fill what the shapes leave of an agent. */
const FILLER_MAX_GIB = 16;

/** PackableSize is one perfectly packable instance: how many agents, how many plans, which seed. */
export interface PackableSize {
  agents: number;
  plans: number;
  seed: number;
}

/** PackableInstance is a generated input plus its total demand (equal to the agents' total capacity). */
export interface PackableInstance {
  input: SchedulerInput;
  tasks: number;
  demand: { cpus: number; mem: number };
}

/** fillable says whether 1-cpu tasks of 1..FILLER_MAX_GIB GiB can cut a remainder exactly. */
function fillable(cpus: number, mem: number): boolean {
  return cpus >= 0 && mem >= cpus && mem <= FILLER_MAX_GIB * cpus;
}

/** cutAgent cuts one agent's [cpus, GiB] into shapes whose sum is exactly the capacity. */
function cutAgent(cpus: number, mem: number, rand: () => number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let c = cpus;
  let m = mem;
  for (;;) {
    const options = PACKABLE_SHAPES.filter(([sc, sm]) => sc <= c && sm <= m && fillable(c - sc, m - sm));
    if (options.length === 0) break;
    const [sc, sm] = options[Math.floor(rand() * options.length)] ?? [0, 0];
    out.push([sc, sm]);
    c -= sc;
    m -= sm;
  }
  // What is left: c tasks of 1 cpu sharing m GiB as evenly as whole GiB allow.
  for (let i = 0; i < c; i++) out.push([1, Math.floor(m / c) + (i < m % c ? 1 : 0)]);
  return out;
}

/** generatePackable builds a perfectly packable SchedulerInput: one cluster of mixed agents, tasks cut from their capacity. */
export function generatePackable(size: PackableSize): PackableInstance {
  const rand = mulberry32(size.seed);
  const agents: AgentSnapshot[] = [];
  const pieces: Array<[number, number]> = [];
  for (let i = 0; i < size.agents; i++) {
    const [cpus, mem] = PACKABLE_AGENT_SIZES[Math.floor(rand() * PACKABLE_AGENT_SIZES.length)] ?? [48, 192];
    agents.push({
      name: `h${String(i).padStart(5, '0')}`,
      idc: 'bj1',
      cluster: 'bj1-a',
      state: 'ready',
      capacity: { cpus, mem: mem * GiB, disk: 0, gpus: 0, scalars: {} },
      attributes: {},
      drivers: ['process'],
    });
    pieces.push(...cutAgent(cpus, mem, rand));
  }
  // Shuffle (Fisher–Yates), deal to plans, group by (plan, shape).
  for (let i = pieces.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = pieces[i] ?? [0, 0];
    pieces[i] = pieces[j] ?? [0, 0];
    pieces[j] = t;
  }
  const projects = ['acme', 'beta', 'gamma'];
  const counts = new Map<string, { plan: number; shape: [number, number]; count: number }>();
  let cpus = 0;
  let mem = 0;
  for (const shape of pieces) {
    const plan = Math.floor(rand() * size.plans);
    const key = `${plan}/${shape[0]}x${shape[1]}`;
    const e = counts.get(key);
    if (e) e.count += 1;
    else counts.set(key, { plan, shape, count: 1 });
    cpus += shape[0];
    mem += shape[1] * GiB;
  }
  const groups: DesiredGroup[] = [...counts.values()].map(({ plan, shape, count }) => ({
    plan: `pack-${plan}`,
    group: `c${shape[0]}m${shape[1]}`,
    project: projects[plan % projects.length] ?? 'acme',
    kind: 'process',
    driver: 'process',
    count,
    everyAgent: false,
    resources: { cpus: shape[0], mem: shape[1] * GiB, disk: 0, gpus: 0, scalars: {}, ports: [] },
    constraints: [],
    specHash: 'h',
    strategy: 'binpack',
  }));
  const input: SchedulerInput = {
    agents,
    groups,
    actual: [],
    plans: [...new Set(groups.map((g) => g.plan))],
    seed: size.seed,
    projects: { acme: { weight: 2 }, beta: { weight: 1 }, gamma: { weight: 1 } },
  };
  return { input, tasks: pieces.length, demand: { cpus, mem } };
}

/** placedShare is the fraction of the instance's cpus and mem that a plan places. */
export function placedShare(instance: PackableInstance, plan: SchedulePlan): { cpus: number; mem: number } {
  let cpus = 0;
  let mem = 0;
  for (const p of plan.create) {
    cpus += p.resources.cpus;
    mem += p.resources.mem;
  }
  return { cpus: cpus / instance.demand.cpus, mem: mem / instance.demand.mem };
}

/** PACKABLE_SIZES are the instances `npm run bench` reports: three sizes, three seeds each. */
export const PACKABLE_SIZES: PackableSize[] = [100, 1_000, 5_000].flatMap((agents) =>
  [1, 2, 3].map((seed) => ({ agents, plans: Math.max(2, Math.round(agents / 250)), seed })),
);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? 0;
}

/** packingFigures schedules every packable instance and renders a table: share placed and time, per instance. */
export function packingFigures(sizes: readonly PackableSize[] = PACKABLE_SIZES, runs = 3): string {
  const rows: string[] = [
    '| perfectly packable instance | tasks | groups | cpus placed | mem placed | tasks unplaced | schedule() |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  const shares: number[] = [];
  for (const size of sizes) {
    const instance = generatePackable(size);
    const times: number[] = [];
    let plan: SchedulePlan | undefined;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      plan = schedule(instance.input);
      times.push(performance.now() - t0);
    }
    if (!plan) continue;
    const share = placedShare(instance, plan);
    shares.push(Math.min(share.cpus, share.mem));
    rows.push(
      `| ${size.agents} agents, seed ${size.seed} | ${instance.tasks} | ${instance.input.groups.length} | ${(100 * share.cpus).toFixed(2)}% | ${(100 * share.mem).toFixed(2)}% | ${plan.unplaced.length} | ${median(times).toFixed(0)} ms |`,
    );
  }
  const mean = shares.reduce((s, x) => s + x, 0) / Math.max(1, shares.length);
  rows.push(
    '',
    `demand placed (the smaller of cpus and mem, per instance): mean ${(100 * mean).toFixed(2)}%, lowest ${(100 * Math.min(...shares)).toFixed(2)}% over ${shares.length} instances (target: mean ≥ 99%, none below 97%); schedule() is the median of ${runs} runs`,
  );
  return rows.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  process.stdout.write(`${packingFigures()}\n`);
}
