/**
 * `factory agents doctor`: for each agent, can we reach it, and does it have what tasks need? One
 * bounded probe per agent (over SSH, or a local shell for local agents) reports Node, free disk of
 * the work dir, Docker, libvirt/QEMU and KVM; each finding says what is missing and how to fix it.
 */
import { execFile } from 'node:child_process';
import pLimit from 'p-limit';
import { AgentError } from '../errors.js';
import type { AgentSpec, InventorySettings } from '../spec/model.js';
import { shellQuote, SshTransport } from '../transport/ssh/index.js';
import { agentWorkDir, MIN_NODE_MAJOR, transportFor } from './agents.js';

/** DoctorCheck is one finding about one agent. */
export interface DoctorCheck {
  check: 'reachable' | 'node' | 'disk' | 'docker' | 'libvirt' | 'qemu' | 'kvm';
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** fix says what to do when status is not ok. */
  fix?: string;
}

/** DoctorReport is every finding about one agent; ok is false when any check failed. */
export interface DoctorReport {
  agent: string;
  ok: boolean;
  checks: DoctorCheck[];
}

/** probeScript is the read-only shell probe run on an agent; it prints key=value lines. */
export function probeScript(workDir: string, nodePath = 'node'): string {
  const n = shellQuote(nodePath);
  const w = shellQuote(workDir);
  return [
    `cd "$HOME" 2>/dev/null`,
    `if command -v ${n} >/dev/null 2>&1; then echo "node=$(${n} -v 2>/dev/null)"; else echo node=missing; fi`,
    `d=${w}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; echo "disk_kib=$(df -Pk "$d" 2>/dev/null | tail -1 | awk '{print $4}')"; echo "disk_path=$d"`,
    `if command -v docker >/dev/null 2>&1; then echo "docker=$(timeout 5 docker info --format '{{.ServerVersion}}' 2>/dev/null || echo no-daemon)"; else echo docker=missing; fi`,
    `if command -v virsh >/dev/null 2>&1; then echo "libvirt=$(timeout 5 virsh -c qemu:///system version --daemon 2>/dev/null | awk '/daemon/ {print $NF}' | head -1)"; else echo libvirt=missing; fi`,
    `if command -v qemu-system-x86_64 >/dev/null 2>&1; then echo "qemu=$(qemu-system-x86_64 --version 2>/dev/null | head -1 | awk '{print $4}')"; else echo qemu=missing; fi`,
    `if [ -c /dev/kvm ]; then echo kvm=yes; else echo kvm=no; fi`,
  ].join('; ');
}

/** assessProbe turns the probe's key=value output into checks with fixes (pure, for tests). */
export function assessProbe(output: string): DoctorCheck[] {
  const kv = new Map<string, string>();
  for (const line of output.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const checks: DoctorCheck[] = [];
  const node = kv.get('node') ?? 'missing';
  const major = Number(/^v(\d+)/.exec(node)?.[1]);
  if (node === 'missing' || node === '') checks.push({ check: 'node', status: 'fail', detail: 'Node.js not found', fix: `install Node >= ${MIN_NODE_MAJOR} (apt-get install -y nodejs) or set ssh.nodePath` });
  else if (!(major >= MIN_NODE_MAJOR)) checks.push({ check: 'node', status: 'fail', detail: `Node ${node} is too old`, fix: `install Node >= ${MIN_NODE_MAJOR} or point ssh.nodePath at one` });
  else checks.push({ check: 'node', status: 'ok', detail: `Node ${node}` });
  const kib = Number(kv.get('disk_kib'));
  const where = kv.get('disk_path') ?? '?';
  if (!Number.isFinite(kib) || kv.get('disk_kib') === '') checks.push({ check: 'disk', status: 'warn', detail: `cannot read free space of ${where}` });
  else if (kib < 100 * 1024) checks.push({ check: 'disk', status: 'fail', detail: `${Math.round(kib / 1024)} MiB free on ${where}`, fix: 'free disk space on the agent (the executor and task logs need room)' });
  else if (kib < 1024 * 1024) checks.push({ check: 'disk', status: 'warn', detail: `${Math.round(kib / 1024)} MiB free on ${where}`, fix: 'free disk space on the agent' });
  else checks.push({ check: 'disk', status: 'ok', detail: `${(kib / 1024 / 1024).toFixed(1)} GiB free on ${where}` });
  const docker = kv.get('docker') ?? 'missing';
  if (docker === 'missing') checks.push({ check: 'docker', status: 'warn', detail: 'docker not installed (containers cannot run here)', fix: 'apt-get install -y docker.io' });
  else if (docker === 'no-daemon' || docker === '') checks.push({ check: 'docker', status: 'warn', detail: 'docker installed but the daemon does not answer', fix: 'start it: dockerd --iptables=false --bridge=none &' });
  else checks.push({ check: 'docker', status: 'ok', detail: `Docker ${docker}` });
  const libvirt = kv.get('libvirt') ?? 'missing';
  if (libvirt === 'missing') checks.push({ check: 'libvirt', status: 'warn', detail: 'libvirt not installed (VMs cannot run here)', fix: 'apt-get install -y libvirt-daemon-system qemu-system-x86 qemu-utils' });
  else if (libvirt === '') checks.push({ check: 'libvirt', status: 'warn', detail: 'virsh installed but libvirtd does not answer', fix: 'start it: virtlogd -d; libvirtd -d' });
  else checks.push({ check: 'libvirt', status: 'ok', detail: `libvirtd ${libvirt}` });
  const qemu = kv.get('qemu') ?? 'missing';
  if (qemu === 'missing') checks.push({ check: 'qemu', status: 'warn', detail: 'qemu-system-x86_64 not installed', fix: 'apt-get install -y qemu-system-x86' });
  else checks.push({ check: 'qemu', status: 'ok', detail: `QEMU ${qemu}` });
  checks.push(kv.get('kvm') === 'yes' ? { check: 'kvm', status: 'ok', detail: '/dev/kvm present' } : { check: 'kvm', status: 'warn', detail: 'no /dev/kvm: VMs run emulated (TCG, slow)', fix: 'enable virtualization in the BIOS / nested virtualization, load kvm_intel or kvm_amd' });
  return checks;
}

function runLocal(script: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', script], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)));
  });
}

/** doctorAgent probes one agent; an unreachable agent is one failed `reachable` check with the fix. */
export async function doctorAgent(spec: AgentSpec, stateDir: string, settings: InventorySettings = {}, timeoutMs = 20_000): Promise<DoctorReport> {
  const workDir = agentWorkDir(spec, stateDir);
  let output: string;
  const checks: DoctorCheck[] = [];
  try {
    if (spec.transport.kind === 'local') {
      output = await runLocal(probeScript(workDir), timeoutMs);
      checks.push({ check: 'reachable', status: 'ok', detail: 'local' });
    } else {
      const t = transportFor(spec, settings) as SshTransport;
      const started = Date.now();
      const conn = await t.connect();
      try {
        checks.push({ check: 'reachable', status: 'ok', detail: `SSH ok in ${Date.now() - started}ms` });
        const r = await SshTransport.exec(conn, probeScript(workDir, spec.transport.nodePath), timeoutMs);
        output = r.stdout;
      } finally {
        conn.end();
      }
    }
  } catch (err) {
    const e = err as AgentError;
    const detail = String(e.message ?? err).replace(/^agent [^:]+: /, '');
    return { agent: spec.name, ok: false, checks: [...checks, { check: 'reachable', status: 'fail', detail, ...(e.hint ? { fix: e.hint } : {}) }] };
  }
  checks.push(...assessProbe(output));
  return { agent: spec.name, ok: checks.every((c) => c.status !== 'fail'), checks };
}

/** doctorAgents probes many agents in parallel (bounded); one slow agent never blocks the others. */
export async function doctorAgents(agents: AgentSpec[], stateDir: string, settings: InventorySettings = {}): Promise<DoctorReport[]> {
  const limit = pLimit(settings.concurrency ?? 32);
  return Promise.all(agents.map((a) => limit(() => doctorAgent(a, stateDir, settings))));
}
