/**
 * bench/docker.ts (`npm run bench:docker`): what factory adds to a container start, side by side in
 * one run against one private dockerd (`--iptables=false --bridge=none`), same image, same limits.
 *
 *   docker run -d              the docker CLI (Go): create + start, one process
 *   factory plan apply         bin/factory run alone: Node, the bundled CLI, plan parsing, state lock,
 *                              the local executor in process (hello + discovery), scheduling,
 *                              driver.run, state write
 *   factory plan apply (host)  the same command with `factory control serve` running for its state:
 *                              bin/factory forwards it and the host runs it warm
 *   executor run               one `run` request to an already connected executor (protocol + driver)
 *   dockerode create+start     the engine calls alone, in process (the floor for the ones above)
 *
 * Runs alternate between the variants, in an order that rotates from run to run, so drift and the
 * engine's leftover work hit them alike; each started container is removed (untimed) before the next
 * run. BENCH_RUNS sets the number of runs per variant (default 15).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TaskRunSpec } from '../src/protocol/messages.js';
import { ExecutorClient } from '../src/transport/client.js';
import { LocalTransport } from '../src/transport/local.js';
import { TEST_IMAGE, buildTestImage, startDockerd } from '../test/harness/dockerd.js';
import { BIN, startControlHost, type RunningHost } from '../test/helpers/control-host.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS) || 15;
const CPUS = 0.25;
const MEM = 32 * 1024 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)]!;
}

function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function timedAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function must(r: ReturnType<typeof spawnSync>, what: string): void {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}): ${r.stderr?.toString()}`);
}

async function waitServed(host: RunningHost, n: number): Promise<boolean> {
  for (let i = 0; i < 50 && host.served() < n; i++) await new Promise((r) => setTimeout(r, 10));
  return host.served() >= n;
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'commands'))) throw new Error('run npm run build first');
  let host: RunningHost | undefined;
  const d = await startDockerd();
  if ('skip' in d) throw new Error(`cannot run the docker bench: ${d.skip}`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-docker-'));
  const env = { ...process.env, DOCKER_HOST: d.host, FACTORY_DOCKER_HOST: d.host, CI: '' };
  try {
    await buildTestImage(d.docker);
    const plan = path.join(scratch, 'bench.yaml');
    fs.writeFileSync(
      plan,
      `name: bench\nproject: bench\ncontainers:\n  - name: c\n    image: ${TEST_IMAGE}\n    command: ["sleep", "600"]\n    resources: {cpus: ${CPUS}, mem: 32Mi}\n    stopGrace: 0s\n`,
    );
    const dockerCli = execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim();
    const hostState = path.join(scratch, 'hosted');
    host = await startControlHost(hostState, { cwd: scratch, env });
    const workDir = path.join(scratch, 'exec');
    const client = await ExecutorClient.connect(new LocalTransport('bench', { env: { FACTORY_DOCKER_HOST: d.host } }), { workDir, agent: 'bench' });
    const spec = (i: number): TaskRunSpec => ({
      task: `bench/exec/${i}`, driver: 'docker', specHash: 'b', command: ['sleep', '600'], env: {}, image: TEST_IMAGE,
      resources: { cpus: CPUS, mem: MEM, disk: 0, gpus: 0, scalars: {}, ports: [] },
      labels: { plan: 'bench', group: 'exec', project: 'bench' }, stopGraceMs: 0, restart: 'always',
    });
    const times = { dockerRun: [] as number[], factoryApply: [] as number[], hostApply: [] as number[], executorRun: [] as number[], dockerode: [] as number[] };

    // one warm-up of each, untimed (page cache, engine caches)
    const warm = spawnSync(dockerCli, ['run', '-d', '--network', 'none', TEST_IMAGE, 'true'], { env });
    must(warm, 'docker run (warm-up)');
    for (let i = 0; i < RUNS; i++) {
      const name = `bench-docker-${i}`;
      const state = path.join(scratch, `state-${i}`);
      const variants: [keyof typeof times, () => Promise<void>][] = [
        ['dockerRun', async () => {
          let r!: ReturnType<typeof spawnSync>;
          times.dockerRun.push(timed(() => {
            r = spawnSync(dockerCli, ['run', '-d', '--name', name, '--network', 'none', `--cpus=${CPUS}`, `--memory=${MEM}`, '--pids-limit=4096', TEST_IMAGE, 'sleep', '600'], { env });
          }));
          must(r, 'docker run');
        }],
        ['factoryApply', async () => {
          let r!: ReturnType<typeof spawnSync>;
          times.factoryApply.push(timed(() => {
            r = spawnSync(BIN, ['plan', 'apply', plan, '--state', state], { env, cwd: scratch });
          }));
          must(r, 'factory plan apply');
        }],
        ['hostApply', async () => {
          let r!: ReturnType<typeof spawnSync>;
          const served = host!.served();
          times.hostApply.push(timed(() => {
            r = spawnSync(BIN, ['plan', 'apply', plan, '--state', hostState], { env, cwd: scratch });
          }));
          must(r, 'factory plan apply (control host)');
          if (!(await waitServed(host!, served + 1))) throw new Error('the control host did not serve the apply');
        }],
        ['executorRun', async () => {
          times.executorRun.push(await timedAsync(async () => {
            const s = await client.run(spec(i));
            if (s.state !== 'running') throw new Error(`executor run: ${s.state} ${s.error ?? ''}`);
          }));
        }],
        ['dockerode', async () => {
          times.dockerode.push(await timedAsync(async () => {
            const c = await d.docker.createContainer({
              name: `bench-dockerode-${i}`, Image: TEST_IMAGE, Cmd: ['sleep', '600'],
              HostConfig: { NetworkMode: 'none', NanoCpus: CPUS * 1e9, Memory: MEM, PidsLimit: 4096 },
            });
            await c.start();
          }));
        }],
      ];
      // the order rotates from run to run, so that what the engine still does after the previous
      // start (or the previous run's removals) weighs on every variant alike
      for (let k = 0; k < variants.length; k++) await variants[(i + k) % variants.length]![1]();

      // cleanup, untimed
      must(spawnSync(BIN, ['plan', 'destroy', plan, '--state', state], { env, cwd: scratch }), 'factory plan destroy');
      must(spawnSync(BIN, ['plan', 'destroy', plan, '--state', hostState], { env, cwd: scratch }), 'factory plan destroy (control host)');
      await client.stop(`bench/exec/${i}`, { graceMs: 0 });
      for (const n of [name, `bench-dockerode-${i}`]) await d.docker.getContainer(n).remove({ force: true });
    }
    await client.close();

    const rows: [string, number[]][] = [
      ['docker run -d (CLI)', times.dockerRun],
      ['factory plan apply (CLI)', times.factoryApply],
      ['factory plan apply (host)', times.hostApply],
      ['executor run (connected)', times.executorRun],
      ['dockerode create+start', times.dockerode],
    ];
    console.log(`\ncontainer start, ${RUNS} runs each, ${TEST_IMAGE}, cpus ${CPUS}, mem 32Mi, NetworkMode none (${os.cpus().length} cpus, ${os.cpus()[0]?.model ?? '?'})`);
    console.log(`${'variant'.padEnd(28)}${'median ms'.padStart(11)}${'p90 ms'.padStart(10)}`);
    for (const [label, xs] of rows) console.log(`${label.padEnd(28)}${median(xs).toFixed(1).padStart(11)}${p90(xs).toFixed(1).padStart(10)}`);
    const cliOverhead = median(times.factoryApply) - median(times.dockerRun);
    const hostOverhead = median(times.hostApply) - median(times.dockerRun);
    const execOverhead = median(times.executorRun) - median(times.dockerode);
    const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
    console.log(`\nfactory plan apply, control host − docker run (median): ${sign(hostOverhead)} ms  (target ≤ 50 ms: ${hostOverhead <= 50 ? 'met' : 'NOT met'})`);
    console.log(`factory plan apply, run alone   − docker run (median): ${sign(cliOverhead)} ms  (target ≤ 50 ms: ${cliOverhead <= 50 ? 'met' : 'NOT met'}; Node's start and module loading included)`);
    console.log(`executor run − dockerode create+start (median): ${execOverhead >= 0 ? '+' : ''}${execOverhead.toFixed(1)} ms  (what the driver and protocol add per container: ${execOverhead <= 50 ? 'within' : 'over'} 50 ms)`);
    if (process.env.BENCH_JSON) {
      fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ runs: RUNS, medians: Object.fromEntries(rows.map(([l, xs]) => [l, median(xs)])), cliOverhead, hostOverhead, execOverhead }, null, 2));
    }
  } finally {
    await host?.stop();
    await d.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
