/**
 * A VM task's health check. As for a process (../process/health.ts), a prober runs on the agent beside
 * the VM: a `sh -c` loop in its own process group that runs the check every interval while QEMU lives
 * and writes the outcome to `<vm folder>/health` (temp file + mv); any session reads the file. The
 * driver starts it when it first sees the VM running without a live prober (after a create, a start,
 * an executor restart), so nothing depends on the session that created the VM.
 *
 * The guest's address is its NIC's IPv6 link-local address on its subnet's bridge: EUI-64 of the MAC
 * libvirt gave the NIC (the Linux kernel's default; a guest that makes stable-privacy addresses needs a
 * command check that finds its address itself), with the bridge as zone: `fe80::…%fv…`. The bridge's
 * own IPv6 is switched on for it (hostLink in networks.ts): only link-local, never routed.
 *
 * - `tcp: true, port`: healthy when `[address]:port` accepts a connection.
 * - `http: /path, port`: a GET on `[address]:port/path`, 2xx/3xx healthy.
 * - `command`: the argv run on the agent host (not in the guest) in the VM's folder, with the group's
 *   `env` and FACTORY_VM_IP (the address with its zone, empty when the VM has no NIC),
 *   FACTORY_VM_BRIDGE, FACTORY_VM_MAC and FACTORY_VM_DOMAIN in its environment; exit 0 is healthy.
 *
 * A VM boots for a while before anything in it answers: it is `starting` until a check first passes,
 * and failures count only from then on (`unhealthy` after HEALTH_RETRIES in a row); a VM that never
 * passes is caught by the deployment's healthyDeadline.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TaskHealthCheck } from '../../../protocol/messages.js';
import { HEALTH_RETRIES, healthTimeoutMs } from '../docker-health.js';
import { isAlive, procStat } from '../process/procfs.js';

/** VM_PROBE_JS checks http (`http <timeoutS> <host> <port> <path>`) or tcp (`tcp <timeoutS> <host> <port>`): exit 0 healthy. */
export const VM_PROBE_JS = [
  "const [kind, to, host, port, p] = process.argv.slice(1); const ms = Math.max(1, Number(to)) * 1000;",
  'setTimeout(() => process.exit(1), ms).unref();',
  'if (!host) process.exit(1);',
  "if (kind === 'tcp') { const s = require('net').connect({ host, port: Number(port) }, () => process.exit(0)); s.on('error', () => process.exit(1)); }",
  "else { require('http').get({ host, port: Number(port), path: p, timeout: ms }, (r) => process.exit(r.statusCode >= 200 && r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1)); }",
].join('\n');

/**
 * VM_HEALTH_SCRIPT is the VM prober's loop. Arguments: `$1` VM folder, `$2` QEMU's pid, `$3` interval
 * (seconds, may be fractional), `$4` per-check timeout (whole seconds), `$5` retries, `$6` kind
 * (command, http, tcp), `$7` node, `$8` VM_PROBE_JS, `$9` the guest's address, then the check's argv
 * (command) or port [path]. Failures before the first pass do not count (the guest boots).
 */
export const VM_HEALTH_SCRIPT = [
  'dir=$1; pid=$2; every=$3; to=$4; retries=$5; kind=$6; node=$7; probe=$8; addr=$9; shift 9',
  'st=starting; fails=0',
  'if command -v timeout >/dev/null 2>&1; then bounded=1; else bounded=; fi',
  'while kill -0 "$pid" 2>/dev/null; do',
  '  if [ "$kind" = command ]; then',
  '    if [ -n "$bounded" ]; then timeout "$to" "$@" >/dev/null 2>&1; else "$@" >/dev/null 2>&1; fi',
  '  else',
  '    "$node" -e "$probe" "$kind" "$to" "$addr" "$@" >/dev/null 2>&1',
  '  fi',
  '  if [ $? -eq 0 ]; then st=healthy; fails=0; elif [ "$st" != starting ]; then fails=$((fails + 1)); if [ "$fails" -ge "$retries" ]; then st=unhealthy; fi; fi',
  '  kill -0 "$pid" 2>/dev/null || break',
  '  echo "$st $fails" > "$dir/health.tmp" && mv -f "$dir/health.tmp" "$dir/health"',
  '  sleep "$every"',
  'done',
].join('\n');

/** VmNic is the guest's first NIC as the driver knows it: its MAC and the host bridge it is plugged into. */
export interface VmNic {
  mac: string;
  bridge: string;
}

/** nicOf reads the first network NIC's MAC and bridge out of a running domain's XML (libvirt fills both in). */
export function nicOf(xml: string): VmNic | undefined {
  const nic = xml.match(/<interface\b[^>]*type=["']network["'][\s\S]*?<\/interface>/)?.[0];
  if (!nic) return undefined;
  const mac = nic.match(/<mac\b[^>]*address=["']([0-9a-fA-F:]{17})["']/)?.[1];
  const bridge = nic.match(/<source\b[^>]*bridge=["']([^"']+)["']/)?.[1];
  return mac && bridge ? { mac: mac.toLowerCase(), bridge } : undefined;
}

/** linkLocalOf is the IPv6 link-local address a Linux guest gives a NIC with this MAC (EUI-64, RFC 4291 appendix A). */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  if (b.length !== 6 || b.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not a MAC address: ${mac}`);
  const eui = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((eui[i]! << 8) | eui[i + 1]!).toString(16));
  return `fe80::${groups.join(':')}`;
}

/** vmAddress is the address a check reaches the guest at: its link-local address zoned to its bridge, '' without a NIC. */
export function vmAddress(nic: VmNic | undefined): string {
  return nic ? `${linkLocalOf(nic.mac)}%${nic.bridge}` : '';
}

/** vmProberArgs is the argv of `/bin/sh` that runs VM_HEALTH_SCRIPT for the VM in dir whose QEMU has pid. */
export function vmProberArgs(dir: string, pid: number, h: TaskHealthCheck, address: string, node: string): string[] {
  const timeoutS = String(Math.max(1, Math.round(healthTimeoutMs(h) / 1000)));
  const head = ['-c', VM_HEALTH_SCRIPT, 'factory-vm-health', dir, String(pid), String(Math.max(0.1, h.intervalMs / 1000)), timeoutS, String(HEALTH_RETRIES)];
  if (h.command && h.command.length > 0) return [...head, 'command', node, VM_PROBE_JS, address, ...h.command];
  if (h.http !== undefined) return [...head, 'http', node, VM_PROBE_JS, address, String(h.port ?? 80), h.http.startsWith('/') ? h.http : `/${h.http}`];
  return [...head, 'tcp', node, VM_PROBE_JS, address, String(h.port ?? 0)];
}

/** hasVmCheck says whether a health check gives the VM a prober (one of command, http, tcp). */
export function hasVmCheck(h: TaskHealthCheck | undefined): h is TaskHealthCheck {
  return !!h && ((h.command?.length ?? 0) > 0 || h.http !== undefined || !!h.tcp);
}

/** ProberRecord is `<vm folder>/prober.json`: the prober's process and the QEMU it watches. */
interface ProberRecord {
  pid: number;
  start?: string;
  qemuPid: number;
}

function readProber(dir: string): ProberRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'prober.json'), 'utf8')) as ProberRecord;
  } catch {
    return undefined;
  }
}

/** proberLive says whether the VM in dir has a live prober watching the QEMU with qemuPid. */
export function proberLive(dir: string, qemuPid: number): boolean {
  const p = readProber(dir);
  return !!p && p.qemuPid === qemuPid && isAlive(p.pid, p.start);
}

/** VmProbeTarget is what a prober needs to know of the VM. */
export interface VmProbeTarget {
  dir: string;
  qemuPid: number;
  domain: string;
  nic?: VmNic;
  health: TaskHealthCheck;
  /** env is the group's `env`: a command check runs with it (under the FACTORY_VM_* variables). */
  env?: Record<string, string>;
}

/**
 * startVmProber starts the VM's prober and records it in prober.json; the health file of an earlier
 * QEMU (a VM started again) is removed first, so the new boot is `starting` again.
 */
export function startVmProber(t: VmProbeTarget, log: (msg: string) => void): void {
  const prev = readProber(t.dir);
  if (prev && isAlive(prev.pid, prev.start)) killGroup(prev.pid);
  if (!prev || prev.qemuPid !== t.qemuPid) fs.rmSync(path.join(t.dir, 'health'), { force: true });
  const address = vmAddress(t.nic);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    ...t.env,
    FACTORY_VM_IP: address,
    FACTORY_VM_BRIDGE: t.nic?.bridge ?? '',
    FACTORY_VM_MAC: t.nic?.mac ?? '',
    FACTORY_VM_DOMAIN: t.domain,
  };
  const child = spawn('/bin/sh', vmProberArgs(t.dir, t.qemuPid, t.health, address, process.execPath), { cwd: t.dir, env, detached: true, stdio: 'ignore' });
  child.on('error', (err) => log(`libvirt driver: ${t.domain}: cannot start its health prober: ${err.message}`));
  child.unref();
  if (child.pid === undefined) return;
  const rec: ProberRecord = { pid: child.pid, qemuPid: t.qemuPid };
  const st = procStat(child.pid);
  if (st) rec.start = st.start;
  fs.writeFileSync(path.join(t.dir, 'prober.json'), JSON.stringify(rec) + '\n');
}

/** stopVmProber ends the VM's prober, if it has a live one (it ends by itself within an interval once QEMU is gone). */
export function stopVmProber(dir: string): void {
  const p = readProber(dir);
  if (p && isAlive(p.pid, p.start)) killGroup(p.pid);
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
