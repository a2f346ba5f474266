/**
 * `npm run bench:ssh`: factory's SSH fan-out against Ansible's ad-hoc command over the same hosts.
 * Starts N loopback sshd hosts (127.0.101.1 … , default 50), then measures, in the same run:
 *   - factory cold: connect + bootstrap (executor upload when missing) + register, every host in parallel
 *   - factory warm: one executor round trip (inspect) on every host over the open sessions
 *   - ansible: `ansible all -m command -a true` with default settings (forks 5, ControlPersist)
 * and prints medians and ratios, with the load average before and after (the hosts share this machine's
 * CPUs with whatever else runs). BENCH_HOSTS, BENCH_ROUNDS and BENCH_ANSIBLE_ROUNDS tune it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentPool } from '../src/control/agents.js';
import type { AgentSpec } from '../src/spec/model.js';
import { executorBundle, remoteExecutorPath } from '../src/transport/ssh/index.js';
import { SshdFleet } from '../test/harness/sshd.js';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ANSIBLE_ROUNDS = Number(process.env.BENCH_ANSIBLE_ROUNDS ?? 3);
const FIRST = 101;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(0)} ms`;
}

function runAnsible(inventory: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; ok: boolean; out: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile('ansible', ['all', '-i', inventory, '-m', 'command', '-a', 'true'], { env, timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ ms: performance.now() - t0, ok: !err, out: `${stdout}${stderr}` });
    });
  });
}

async function main(): Promise<void> {
  process.stderr.write(`starting ${HOSTS} sshd hosts (127.0.${FIRST}.1 … 127.0.${FIRST + HOSTS - 1}.1)…\n`);
  const loadBefore = os.loadavg();
  const fleet = await SshdFleet.start(HOSTS, { first: FIRST });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-ssh-'));
  try {
    const agents: AgentSpec[] = fleet.hosts.map((h) => ({
      name: `h${h.index}`, idc: h.index % 2 ? 'bj1' : 'sh2', cluster: h.index % 2 ? 'bj1-a' : 'sh2-a', resources: {}, attributes: {},
      workDir: path.join(work, `h${h.index}`),
      transport: { kind: 'ssh', host: h.address, port: h.port, user: 'root', identityFile: fleet.clientKey, knownHostsFile: fleet.knownHosts },
    }));
    const remote = path.join(os.homedir(), remoteExecutorPath(executorBundle().hash));
    const cold: number[] = [];
    const warm: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      fs.rmSync(remote, { force: true }); // every cold round includes the SFTP upload
      const t0 = performance.now();
      const pool = await AgentPool.connect(agents, { stateDir: work, stateId: 'st-0123456789ab' });
      cold.push(performance.now() - t0);
      if (pool.failed.size) {
        const [name, f] = [...pool.failed.entries()][0]!;
        throw new Error(`${pool.failed.size} agents failed, e.g. ${name}: ${f.error}`);
      }
      for (let w = 0; w < 3; w++) {
        const t1 = performance.now();
        await Promise.all([...pool.connected.values()].map((c) => c.client.inspect(10_000)));
        warm.push(performance.now() - t1);
      }
      await pool.close();
    }
    let ansible: number[] = [];
    let ansibleNote = '';
    const ansibleInv = path.join(work, 'ansible-hosts.ini');
    fs.writeFileSync(
      ansibleInv,
      `[all]\n${fleet.hosts.map((h) => `h${h.index} ansible_host=${h.address} ansible_port=${h.port}`).join('\n')}\n\n[all:vars]\nansible_user=root\nansible_ssh_private_key_file=${fleet.clientKey}\nansible_ssh_common_args='-o UserKnownHostsFile=${fleet.knownHosts}'\nansible_python_interpreter=/usr/bin/python3\n`,
    );
    const env = { ...process.env, ANSIBLE_LOCAL_TEMP: path.join(work, 'ansible-tmp'), ANSIBLE_CONTROL_PATH_DIR: path.join(work, 'cp') };
    const haveAnsible = await new Promise<boolean>((r) => execFile('ansible', ['--version'], (e) => r(!e)));
    if (!haveAnsible) ansibleNote = 'ansible not installed (apt-get install -y ansible-core): no comparison';
    else {
      for (let r = 0; r < ANSIBLE_ROUNDS; r++) {
        const a = await runAnsible(ansibleInv, env);
        if (!a.ok) {
          ansibleNote = `ansible failed: ${a.out.split('\n').filter((l) => /UNREACHABLE|FAILED|ERROR/.test(l)).slice(0, 3).join(' | ')}`;
          break;
        }
        ansible.push(a.ms);
      }
      if (ansibleNote) ansible = [];
    }
    const c = median(cold);
    const w = median(warm);
    const lines = [
      `SSH fan-out over ${HOSTS} loopback sshd hosts (${os.cpus().length} cpus, Node ${process.version}, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} after); medians`,
      `  factory cold  (connect + bootstrap + register, all hosts): ${ms(c)}   [${cold.map(ms).join(', ')}]  target ≤ 3 s`,
      `  factory warm  (one executor round trip on every host):    ${ms(w)}   [${warm.map(ms).join(', ')}]  target ≤ 0.3 s`,
    ];
    if (ansible.length) {
      const a = median(ansible);
      lines.push(`  ansible       (ansible all -m command -a true, defaults): ${ms(a)}   [${ansible.map(ms).join(', ')}]`);
      lines.push(`  ratio ansible / factory cold: ${(a / c).toFixed(1)}×   ansible / factory warm: ${(a / w).toFixed(0)}×   target ≥ 10×`);
    } else lines.push(`  ansible: ${ansibleNote}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    if (process.env.BENCH_JSON) {
      fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ hosts: HOSTS, coldMs: cold, warmMs: warm, ansibleMs: ansible }, null, 2));
    }
  } finally {
    await fleet.stop(true);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:ssh failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
