/**
 * bench/deploy.ts (`npm run bench:deploy`): the time to roll a group of 100 processes to a new spec
 * through a real control host (`plan apply --wait`), side by side:
 *
 *   1. a deployment, maxParallel 10, maxSurge 0, minHealthyTime 0 (10 batches, one a step);
 *   2. a deployment, maxParallel 100 (one batch: every task stopped, then started: the old apply);
 *   3. plan destroy, then plan apply (nothing kept, no deployment).
 *
 * Each variant rolls the group BENCH_RUNS times (default 3), alternating the version; medians. The
 * host steps deployments every FACTORY_DEPLOY_TICK_MS (default 1000 ms): a batch waits for the next
 * step to see its tasks running, so variant 1 takes about 10 steps.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startControlHost, BIN } from '../test/helpers/control-host.js';

const RUNS = Number(process.env.BENCH_RUNS) || 3;
const COUNT = Number(process.env.BENCH_COUNT) || 100;

function planText(version: number, update: string): string {
  return `name: roll\nproject: bench\nupdate: {${update}}\nprocesses:\n  - name: nap\n    count: ${COUNT}\n    command: [sleep, "3600"]\n    env: {V: "${version}"}\n    resources: {cpus: 0.001, mem: 1Mi}\n    stopGrace: 1s\n`;
}

function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv): { ms: number; code: number | null; stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(BIN, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { ms: performance.now() - t0, code: r.status, stderr: r.stderr };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-deploy-'));
  const state = path.join(dir, 'state');
  const plan = path.join(dir, 'roll.yaml');
  const env = { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '' };
  const host = await startControlHost(state, { cwd: dir, env });
  let version = 0;
  const apply = (update: string, extra: string[] = []) => {
    fs.writeFileSync(plan, planText(++version, update));
    const r = cli(['plan', 'apply', plan, '--state', state, ...extra], dir, env);
    if (r.code !== 0) throw new Error(`plan apply exited ${r.code}: ${r.stderr.slice(-2000)}`);
    return r.ms;
  };
  try {
    apply('maxParallel: 10, minHealthyTime: 0');
    const variants: [string, () => number][] = [
      ['deployment, maxParallel 10, minHealthyTime 0', () => apply('maxParallel: 10, minHealthyTime: 0', ['--wait'])],
      ['deployment, maxParallel 100 (stop all, start all)', () => apply(`maxParallel: ${COUNT}, minHealthyTime: 0`, ['--wait'])],
      [
        'plan destroy, then plan apply',
        () => {
          const d = cli(['plan', 'destroy', plan, '--state', state], dir, env);
          if (d.code !== 0) throw new Error(`plan destroy exited ${d.code}: ${d.stderr.slice(-2000)}`);
          return d.ms + apply('maxParallel: 10, minHealthyTime: 0');
        },
      ],
    ];
    const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    for (let run = 0; run < RUNS; run++) for (const [name, fn] of variants) times.get(name)!.push(fn());
    console.log(`rolling ${COUNT} processes through a control host (deployment step every ${process.env.FACTORY_DEPLOY_TICK_MS ?? 1000} ms), median of ${RUNS}:`);
    for (const [name, xs] of times) console.log(`  ${name.padEnd(52)} ${(median(xs) / 1000).toFixed(2)} s   (${xs.map((x) => (x / 1000).toFixed(2)).join(', ')})`);
  } finally {
    cli(['plan', 'destroy', plan, '--state', state], dir, env);
    await host.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
