/**
 * bench/vm.ts (`npm run bench:vm`): what factory adds to a VM start, side by side in one run against
 * one libvirtd, same tiny guest (`type='qemu'`, direct kernel boot), same size.
 *
 *   virsh define + start       two virsh processes on a ready domain XML and qcow2 overlay (the baseline)
 *   factory plan apply         bin/factory run alone: Node, the bundled CLI, plan parsing, state lock,
 *                              the local executor in process (hello + discovery), scheduling, overlay
 *                              creation (qemu-img), define + start
 *   factory plan apply (host)  the same command with `factory control serve` running for its state
 *   factory --version          the CLI's startup alone, for scale: no agent, no libvirt
 *   executor run               one `run` request to an already connected executor (overlay + define + start)
 *
 * Runs alternate between the variants so drift hits them alike; every VM is removed (untimed) before
 * the next run. A start ends when libvirt reports the domain running (the guest's boot is not timed).
 * BENCH_RUNS sets the runs per variant (default 9). Overheads are medians minus the virsh median.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { domainXml } from '../src/executors/drivers/libvirt/xml.js';
import type { TaskRunSpec } from '../src/protocol/messages.js';
import { readVmImageSource, uploadVmImage } from '../src/control/vm-images.js';
import { ExecutorClient } from '../src/transport/client.js';
import { LocalTransport } from '../src/transport/local.js';
import { acquireLibvirtd, makeGuestImageSource, testWorkDir } from '../test/harness/libvirtd.js';
import { BIN, startControlHost, type RunningHost } from '../test/helpers/control-host.js';

const RUNS = Number(process.env.BENCH_RUNS) || 9;
const MEM = 128 * 1024 * 1024;
const URI = 'qemu:///system';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const virsh = (...args: string[]) => execFileSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function timedAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const lv = await acquireLibvirtd();
  if (!lv.ok) {
    process.stderr.write(`bench:vm: ${lv.reason}\n`);
    process.exit(1);
  }
  const work = testWorkDir('bench-vm-');
  const state = path.join(work.dir, 'state');
  fs.mkdirSync(state, { mode: 0o755 });
  const agentDir = path.join(state, 'agents', 'local');
  const src = makeGuestImageSource(path.join(work.dir, 'guest'));
  const plan = path.join(work.dir, 'bench.yaml');
  fs.writeFileSync(plan, `name: bench\nproject: bench\nvms:\n  - name: vm\n    image: tiny\n    count: 1\n    resources: {cpus: 1, mem: 128Mi}\n    stopGrace: 0s\n`);
  const hostState = path.join(work.dir, 'hosted');
  fs.mkdirSync(hostState, { mode: 0o755 });
  const env = { ...process.env, FACTORY_STATE: '', FACTORY_INVENTORY: '' };
  const cli = (args: string[], dir = state) => {
    const r = spawnSync(BIN, [...args, '--state', dir], { cwd: work.dir, encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`factory ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const times = { virsh: [] as number[], apply: [] as number[], host: [] as number[], version: [] as number[], run: [] as number[] };
  let client: ExecutorClient | undefined;
  let host: RunningHost | undefined;
  try {
    cli(['vm', 'push', src, '--name', 'tiny']);
    cli(['vm', 'push', src, '--name', 'tiny'], hostState);
    host = await startControlHost(hostState, { cwd: work.dir, env });
    client = await ExecutorClient.connect(new LocalTransport('local'), { workDir: agentDir, timeoutMs: 60_000 });
    await uploadVmImage(client, await readVmImageSource(src), 'tiny');
    const store = fs.realpathSync(path.join(agentDir, 'vm-store'));
    const image = fs.readFileSync(path.join(store, 'images', 'names', 'tiny'), 'utf8').trim();
    const imgDir = path.join(store, 'images', image);
    // the baseline's domain: the same XML factory would write, on a prepared overlay
    const baseDir = path.join(work.dir, 'virsh');
    fs.mkdirSync(baseDir, { mode: 0o755 });
    const overlay = path.join(baseDir, 'disk.qcow2');
    const xmlFile = path.join(baseDir, 'domain.xml');
    const name = `fct-bench-virsh-${process.pid}`;
    fs.writeFileSync(
      xmlFile,
      domainXml({
        name, vcpus: 1, memMiB: MEM / 1024 / 1024, disk: overlay, kernel: path.join(imgDir, 'kernel'), initrd: path.join(imgDir, 'initrd'),
        cmdline: 'console=ttyS0 panic=-1', volumes: [], consoleLog: path.join(baseDir, 'console.log'),
        metadata: { task: 'bench/virsh/0', plan: 'bench', group: 'virsh', project: 'bench', specHash: 'x', image, store: baseDir },
      }),
    );
    const spec: TaskRunSpec = {
      task: 'benchrun/vm/0', driver: 'libvirt', specHash: 'b1', command: [], env: {},
      resources: { cpus: 1, mem: MEM, disk: 0, gpus: 0, scalars: {}, ports: [] },
      labels: { plan: 'benchrun', group: 'vm', project: 'bench' }, stopGraceMs: 0, image: 'tiny',
    };
    for (let i = 0; i < RUNS; i++) {
      process.stderr.write(`run ${i + 1}/${RUNS}\r`);
      // virsh define + start
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.join(imgDir, 'disk.qcow2'), '-F', 'qcow2', overlay]);
      times.virsh.push(timed(() => {
        virsh('define', xmlFile);
        virsh('start', name);
      }));
      virsh('destroy', name);
      virsh('undefine', name);
      // factory plan apply (the CLI)
      times.apply.push(timed(() => cli(['plan', 'apply', plan])));
      cli(['plan', 'destroy', plan]);
      // the same through the control host
      const served = host.served();
      times.host.push(timed(() => cli(['plan', 'apply', plan], hostState)));
      for (let w = 0; w < 50 && host.served() <= served; w++) await new Promise((r) => setTimeout(r, 10));
      if (host.served() <= served) throw new Error('the control host did not serve the apply');
      cli(['plan', 'destroy', plan], hostState);
      times.version.push(timed(() => cli(['--version'])));
      // executor run (connected executor)
      const c = client;
      times.run.push(await timedAsync(async () => {
        const st = await c.run(spec);
        if (st.state !== 'running') throw new Error(`executor run: ${st.state}: ${st.error}`);
      }));
      await c.stop(spec.task, { graceMs: 0 });
    }
  } finally {
    await client?.close();
    await host?.stop();
    for (const dir of [state, hostState]) spawnSync(BIN, ['plan', 'destroy', plan, '--state', dir], { cwd: work.dir, env });
    work.cleanup();
    await lv.release();
  }
  const base = median(times.virsh);
  const row = (label: string, xs: number[]) =>
    `${label.padEnd(24)} ${median(xs).toFixed(1).padStart(9)} ${Math.min(...xs).toFixed(1).padStart(9)} ${Math.max(...xs).toFixed(1).padStart(9)} ${(median(xs) - base).toFixed(1).padStart(11)}`;
  const lines = [
    `VM start, ${RUNS} runs per variant (ms; tiny guest, type='qemu', 1 vcpu, 128 MiB; node ${process.version})`,
    `${'variant'.padEnd(24)} ${'median'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)} ${'overhead'.padStart(11)}`,
    row('virsh define + start', times.virsh),
    row('factory plan apply', times.apply),
    row('factory apply (host)', times.host),
    row('factory --version', times.version),
    row('executor run', times.run),
    '',
    `target: factory adds <= 100 ms to a VM start (median):`,
    `  factory plan apply, control host: ${median(times.host) - base <= 100 ? 'met' : 'NOT met'} (${(median(times.host) - base).toFixed(1)} ms)`,
    `  factory plan apply, run alone:    ${median(times.apply) - base <= 100 ? 'met' : 'NOT met'} (${(median(times.apply) - base).toFixed(1)} ms, Node's start and module loading included)`,
    `  executor run:                     ${median(times.run) - base <= 100 ? 'met' : 'NOT met'} (${(median(times.run) - base).toFixed(1)} ms)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
