/**
 * Synthetic inputs for the scheduler benchmark: an inventory of identical agents spread over IDCs and
 * clusters, with projects, and a set of plans whose tasks fill a chosen fraction of the capacity.
 * Deterministic for a seed; written as ordinary YAML files so the real CLI path can read them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mulberry32 } from './rng.js';

/** BenchSize is one benchmark configuration. */
export interface BenchSize {
  /** label names the size in the output, e.g. `10k×100k`. */
  label: string;
  agents: number;
  tasks: number;
  /** clusters is how many clusters the agents are split into (spread over 4 IDCs). */
  clusters: number;
  /** fill is the fraction of the total cpus the tasks ask for (tight workloads: 0.85–0.95). */
  fill: number;
}

/** BENCH_AGENT is the capacity of every synthetic agent. */
export const BENCH_AGENT = { cpus: 48, mem: 192 * 1024 ** 3, disk: 2 * 1024 ** 4 };

/** BENCH_PROJECTS are the synthetic tenants, with weights. */
export const BENCH_PROJECTS = ['acme', 'beta', 'gamma', 'delta'] as const;

/** BENCH_SHAPES are the task sizes drawn from (cpus, GiB of mem). */
export const BENCH_SHAPES: ReadonlyArray<[number, number]> = [
  [1, 2], [1, 4], [2, 4], [2, 8], [4, 8], [4, 16], [6, 24], [8, 16], [8, 32], [12, 48], [16, 32],
];

/** GeneratedInputs are the paths of one generated workload plus its total demand. */
export interface GeneratedInputs {
  inventory: string;
  plansDir: string;
  demand: { cpus: number; mem: number };
  tasks: number;
}

/**
 * fitShapes steps each group's shape down or up BENCH_SHAPES (by cpus) until the cpus asked, the sum of
 * countOf(group) × shape cpus, are within 0.5% of target (at most 20 passes); it returns the cpus asked.
 */
function fitShapes<G extends { shape: [number, number] }>(groups: G[], countOf: (g: G) => number, target: number): number {
  let demandCpus = groups.reduce((s, g) => s + countOf(g) * g.shape[0], 0);
  const sorted = [...BENCH_SHAPES].sort((a, b) => a[0] - b[0]);
  for (let pass = 0; pass < 20 && Math.abs(demandCpus - target) > target * 0.005; pass++) {
    for (const g of groups) {
      if (Math.abs(demandCpus - target) <= target * 0.005) break;
      const idx = sorted.findIndex((s) => s[0] === g.shape[0] && s[1] === g.shape[1]);
      const next = demandCpus > target ? sorted[Math.max(0, idx - 1)] : sorted[Math.min(sorted.length - 1, idx + 1)];
      if (!next || Math.abs(demandCpus + countOf(g) * (next[0] - g.shape[0]) - target) > Math.abs(demandCpus - target)) continue;
      demandCpus += countOf(g) * (next[0] - g.shape[0]);
      g.shape = next;
    }
  }
  return demandCpus;
}

/** generateInputs writes `inventory.yaml` and `plans/*.yaml` for a size into `dir`. */
export async function generateInputs(dir: string, size: BenchSize, seed = 7): Promise<GeneratedInputs> {
  const rand = mulberry32(seed);
  const idcs = ['bj1', 'bj2', 'sh1', 'sh2'];
  const perCluster = Math.ceil(size.agents / size.clusters);
  const lines: string[] = ['idcs:'];
  let made = 0;
  for (let i = 0; i < idcs.length; i++) {
    const clustersHere = Array.from({ length: size.clusters }, (_, c) => c).filter((c) => c % idcs.length === i);
    if (clustersHere.length === 0) continue;
    lines.push(`  - name: ${idcs[i]}`, '    clusters:');
    for (const c of clustersHere) {
      lines.push(`      - name: ${idcs[i]}-c${c}`, '        agents:');
      for (let k = 0; k < perCluster && made < size.agents; k++, made++) {
        const ip = `10.${c}.${k >> 8}.${k & 255}`;
        lines.push(
          `          - {name: h${String(made).padStart(5, '0')}, ssh: {host: ${ip}}, resources: {cpus: 48, mem: 192Gi, disk: 2Ti}, attributes: {rack: r${k % 20}, cpu_model: Xeon-6248}}`,
        );
      }
    }
  }
  lines.push('projects:');
  lines.push('  acme: {weight: 2}', '  beta: {weight: 1}', '  gamma: {weight: 1}', '  delta: {weight: 1}');
  await mkdir(join(dir, 'plans'), { recursive: true });
  const inventory = join(dir, 'inventory.yaml');
  await writeFile(inventory, `${lines.join('\n')}\n`);

  // Tasks: groups of 100–1000 identical tasks, shapes drawn at random, scaled so cpus ≈ fill × capacity.
  const capacityCpus = size.agents * BENCH_AGENT.cpus;
    const groups: Array<{ count: number; shape: [number, number]; constraint: boolean }> = [];
  let tasks = 0;
  while (tasks < size.tasks) {
    const count = Math.min(size.tasks - tasks, 100 + Math.floor(rand() * 900));
    groups.push({ count, shape: BENCH_SHAPES[Math.floor(rand() * BENCH_SHAPES.length)] ?? [1, 2], constraint: rand() < 0.2 });
    tasks += count;
  }
  // Scale: pick shapes so that the expected demand is close to the target; trim by reshaping groups.
  const demandCpus = fitShapes(groups, (g) => g.count, size.fill * capacityCpus);
  const perPlan = Math.ceil(groups.length / 8);
  let demandMem = 0;
  for (let p = 0; p * perPlan < groups.length; p++) {
    const project = BENCH_PROJECTS[p % BENCH_PROJECTS.length];
    const out = [`name: bench-${p}`, `project: ${project}`, 'processes:'];
    groups.slice(p * perPlan, (p + 1) * perPlan).forEach((g, i) => {
      demandMem += g.count * g.shape[1] * 1024 ** 3;
      out.push(
        `  - name: g${i}`,
        `    count: ${g.count}`,
        '    command: ["sleep", "infinity"]',
        `    resources: {cpus: ${g.shape[0]}, mem: ${g.shape[1]}Gi}`,
      );
      if (g.constraint) out.push('    constraints: ["rack != r19"]');
    });
    await writeFile(join(dir, 'plans', `bench-${p}.yaml`), `${out.join('\n')}\n`);
  }
  return { inventory, plansDir: join(dir, 'plans'), demand: { cpus: demandCpus, mem: demandMem }, tasks };
}

/** FleetSize is a heterogeneous fleet configuration (issue 15): agents of several sizes with attributes, and constrained groups. */
export interface FleetSize {
  label: string;
  agents: number;
  /** groups of `perGroup` identical tasks each. */
  groups: number;
  perGroup: number;
  /** constrained is the fraction of groups with a constraint (`rack != rN` or `ssd == yes`). */
  constrained: number;
  fill: number;
  /** format is how the files are written: block YAML (`*.yaml`) or the same data as JSON (`*.json`). */
  format: 'yaml' | 'json';
}

/** FLEET_AGENT_SIZES are the three agent sizes of a heterogeneous fleet (cpus, GiB of mem, TiB of disk). */
export const FLEET_AGENT_SIZES: ReadonlyArray<[number, number, number]> = [
  [16, 64, 1], [48, 192, 2], [96, 384, 4],
];

/** FLEET_RACKS is how many values the `rack` attribute takes. */
export const FLEET_RACKS = 100;

/** GeneratedFleet are the files of one generated heterogeneous fleet (plans are passed as files: `*.json` is not picked from a folder). */
export interface GeneratedFleet {
  inventory: string;
  planFiles: string[];
  demand: { cpus: number; mem: number };
  capacity: { cpus: number; mem: number };
  tasks: number;
  bytes: { inventory: number; plans: number };
}

/** blockYaml writes plain data (mappings, lists, scalars) as block YAML, one key per line. */
function blockYaml(value: unknown, indent = ''): string[] {
  const scalar = (v: unknown): string => (typeof v === 'string' && /^[\w./-]+$/.test(v) && !/^(?:true|false|null|~|[-+]?[0-9.]+(?:e[-+]?\d+)?)$/i.test(v) ? v : JSON.stringify(v));
  const out: string[] = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
        const inner = blockYaml(item, `${indent}  `);
        out.push(`${indent}- ${(inner[0] ?? '').trimStart()}`, ...inner.slice(1));
      } else out.push(`${indent}- ${scalar(item)}`);
    }
    return out;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== null && typeof v === 'object' && (!Array.isArray(v) || v.some((x) => x !== null && typeof x === 'object'))) {
      out.push(`${indent}${k}:`, ...blockYaml(v, Array.isArray(v) ? indent : `${indent}  `));
    } else if (Array.isArray(v)) out.push(`${indent}${k}: [${v.map(scalar).join(', ')}]`);
    else out.push(`${indent}${k}: ${scalar(v)}`);
  }
  return out;
}

/**
 * generateFleet writes a heterogeneous fleet into `dir`: agents of FLEET_AGENT_SIZES (in turn) over 4
 * IDCs × 20 clusters, each with a `rack` (FLEET_RACKS values) and an `ssd` attribute (every other
 * rack), and `groups` groups of `perGroup` tasks over 10 plans, a `constrained` fraction of them with
 * `rack != rN` or `ssd == yes`, shapes scaled so the cpus asked ≈ fill × capacity. The same seed
 * writes the same data as block YAML or as JSON.
 */
export async function generateFleet(dir: string, size: FleetSize, seed = 11): Promise<GeneratedFleet> {
  const rand = mulberry32(seed);
  const idcs = ['bj1', 'bj2', 'sh1', 'sh2'];
  const clusters = 20;
  const perCluster = Math.ceil(size.agents / clusters);
  let capCpus = 0;
  let capMem = 0;
  let made = 0;
  const inv = {
    idcs: idcs.map((idc, i) => ({
      name: idc,
      clusters: Array.from({ length: clusters / idcs.length }, (_, c) => {
        const cl = c * idcs.length + i;
        const agents: unknown[] = [];
        for (let k = 0; k < perCluster && made < size.agents; k++, made++) {
          const [cpus, gib, tib] = FLEET_AGENT_SIZES[made % FLEET_AGENT_SIZES.length] ?? [48, 192, 2];
          capCpus += cpus;
          capMem += gib * 1024 ** 3;
          const rack = Math.floor(made / Math.ceil(size.agents / FLEET_RACKS)) % FLEET_RACKS;
          agents.push({
            name: `h${String(made).padStart(5, '0')}`,
            ssh: { host: `10.${cl}.${k >> 8}.${k & 255}` },
            resources: { cpus, mem: `${gib}Gi`, disk: `${tib}Ti` },
            attributes: { rack: `r${rack}`, ssd: rack % 2 === 0 ? 'yes' : 'no' },
          });
        }
        return { name: `${idc}-c${cl}`, agents };
      }),
    })),
    projects: { acme: { weight: 2 }, beta: { weight: 1 }, gamma: { weight: 1 }, delta: { weight: 1 } },
  };
  const groups = Array.from({ length: size.groups }, () => ({
    shape: BENCH_SHAPES[Math.floor(rand() * BENCH_SHAPES.length)] ?? [1, 2],
    constraint: rand() < size.constrained ? (rand() < 0.5 ? `rack != r${Math.floor(rand() * FLEET_RACKS)}` : 'ssd == yes') : undefined,
  }));
  // scale: step group shapes up or down until the cpus asked are within 0.5% of the target
  const demandCpus = fitShapes(groups, () => size.perGroup, size.fill * capCpus);
  const ext = size.format === 'json' ? 'json' : 'yaml';
  const write = async (file: string, data: unknown): Promise<number> => {
    const text = size.format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : `${blockYaml(data).join('\n')}\n`;
    await writeFile(file, text);
    return Buffer.byteLength(text);
  };
  await mkdir(join(dir, 'plans'), { recursive: true });
  const inventory = join(dir, `inventory.${ext}`);
  const bytes = { inventory: await write(inventory, inv), plans: 0 };
  const plans = 10;
  const perPlan = Math.ceil(groups.length / plans);
  const planFiles: string[] = [];
  let demandMem = 0;
  for (let p = 0; p * perPlan < groups.length; p++) {
    const processes = groups.slice(p * perPlan, (p + 1) * perPlan).map((g, i) => {
      demandMem += size.perGroup * g.shape[1] * 1024 ** 3;
      return {
        name: `g${i}`,
        count: size.perGroup,
        command: ['sleep', 'infinity'],
        resources: { cpus: g.shape[0], mem: `${g.shape[1]}Gi` },
        ...(g.constraint ? { constraints: [g.constraint] } : {}),
      };
    });
    const file = join(dir, 'plans', `fleet-${p}.${ext}`);
    bytes.plans += await write(file, { name: `fleet-${p}`, project: BENCH_PROJECTS[p % BENCH_PROJECTS.length], processes });
    planFiles.push(file);
  }
  return { inventory, planFiles, demand: { cpus: demandCpus, mem: demandMem }, capacity: { cpus: capCpus, mem: capMem }, tasks: size.groups * size.perGroup, bytes };
}
