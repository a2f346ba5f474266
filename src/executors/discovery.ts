/**
 * Host discovery: what the executor reports on `hello` — resources, attributes, drivers and how it
 * can enforce limits. Everything here is read-only and bounded in time.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LimitsMode } from '../protocol/messages.js';
import type { Driver as DriverName } from '../scheduler/types.js';
import { DEFAULT_DOCKER_SOCKET, dockerEndpoint, pingDocker, type DockerEndpoint } from './drivers/docker-engine.js';

/** EXECUTOR_VERSION is reported in the registration; bump with behaviour changes of the executor. */
export const EXECUTOR_VERSION = '0.1.0';

/** CGROUP_ROOT is where cgroup file systems are mounted (overridable for tests with FACTORY_CGROUP_ROOT). */
export const CGROUP_ROOT = process.env.FACTORY_CGROUP_ROOT ?? '/sys/fs/cgroup';

/** DOCKER_PING_TIMEOUT_MS bounds discovery's ping of the Docker engine; 'docker' is a driver only when it answers. */
export const DOCKER_PING_TIMEOUT_MS = 1000;

/** Discovery is what discover() finds about the host. */
export interface Discovery {
  hostname: string;
  resources: { cpus: number; mem: number; disk: number; gpus: number; scalars: Record<string, number> };
  attributes: Record<string, string>;
  drivers: DriverName[];
  limits: LimitsMode;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function writable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** ownCgroup returns this process's cgroup path for a v1 controller (or the v2 path for ''), from /proc/self/cgroup. */
export function ownCgroup(controller: string): string {
  const text = readText('/proc/self/cgroup') ?? '';
  for (const line of text.split('\n')) {
    const m = line.match(/^\d+:([^:]*):(.*)$/);
    if (!m) continue;
    const ctrls = m[1] ?? '';
    const p = m[2] ?? '/';
    if (controller === '' ? ctrls === '' : ctrls.split(',').includes(controller)) return p;
  }
  return '/';
}

/** detectLimits says how process tasks get limits here: cgroup v2, cgroup v1 (cpu + memory writable), else rlimit. */
export function detectLimits(root: string = CGROUP_ROOT): LimitsMode {
  if (process.env.FACTORY_LIMITS === 'rlimit' || process.env.FACTORY_LIMITS === 'none') return process.env.FACTORY_LIMITS;
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) {
    return writable(path.join(root, 'cgroup.procs')) ? 'cgroup-v2' : 'rlimit';
  }
  const mem = path.join(root, 'memory');
  const cpu = path.join(root, 'cpu');
  if (fs.existsSync(path.join(mem, 'cgroup.procs')) && fs.existsSync(path.join(cpu, 'cgroup.procs')) && writable(mem) && writable(cpu)) {
    return 'cgroup-v1';
  }
  return 'rlimit';
}

/** cgroupMemLimit returns the memory limit of this process's cgroup in bytes, or undefined when unlimited/unknown. */
export function cgroupMemLimit(root: string = CGROUP_ROOT): number | undefined {
  const candidates: string[] = [];
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) {
    candidates.push(path.join(root, ownCgroup(''), 'memory.max'));
  } else {
    candidates.push(path.join(root, 'memory', ownCgroup('memory'), 'memory.limit_in_bytes'));
    candidates.push(path.join(root, 'memory', 'memory.limit_in_bytes'));
  }
  for (const file of candidates) {
    const text = readText(file)?.trim();
    if (!text || text === 'max') continue;
    const n = Number(text);
    // v1 reports "unlimited" as a huge page-aligned number close to 2^63.
    if (Number.isFinite(n) && n > 0 && n < 2 ** 62) return n;
  }
  return undefined;
}

/** sanitizeAttribute turns free text (like a CPU model name) into an attribute value: `[A-Za-z0-9._-]`, dash-joined. */
export function sanitizeAttribute(text: string): string {
  return text
    .replace(/\((R|TM|tm|r)\)/g, '')
    .replace(/\bCPU\b/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
}

/** cpuInfo reads the CPU model and the hardware virtualization flag from /proc/cpuinfo. */
export function cpuInfo(text: string | undefined = readText('/proc/cpuinfo')): { model: string; virtualization: boolean } {
  const lines = (text ?? '').split('\n');
  const modelLine = lines.find((l) => /^model name\s*:/.test(l)) ?? lines.find((l) => /^(Hardware|cpu model|Model)\s*:/.test(l));
  const model = sanitizeAttribute(modelLine ? modelLine.slice(modelLine.indexOf(':') + 1) : os.cpus()[0]?.model ?? 'unknown') || 'unknown';
  const flags = lines.find((l) => /^flags\s*:/.test(l)) ?? '';
  const virtualization = /\b(vmx|svm)\b/.test(flags);
  return { model, virtualization };
}

/** onPath returns where an executable is found on PATH, without spawning anything. */
export function onPath(bin: string, pathEnv: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathEnv.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * countGpus counts `nvidia-smi -L` lines; 0 when the binary is not on PATH (checked without a
 * spawn, so hosts without GPUs pay nothing), fails or takes longer than timeoutMs.
 */
export function countGpus(timeoutMs = 5000): Promise<number> {
  const bin = onPath('nvidia-smi');
  if (!bin) return Promise.resolve(0);
  return new Promise((resolve) => {
    try {
      execFile(bin, ['-L'], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
        if (err) return resolve(0);
        resolve(stdout.split('\n').filter((l) => /^GPU \d+/.test(l.trim())).length);
      });
    } catch {
      resolve(0);
    }
  });
}

/**
 * dockerAnswers pings the engine only when there is one to ask: a tcp endpoint, or a unix socket
 * that exists (a missing socket costs one stat, not a request).
 */
export function dockerAnswers(timeoutMs = DOCKER_PING_TIMEOUT_MS): Promise<boolean> {
  let endpoint: DockerEndpoint;
  try {
    endpoint = dockerEndpoint();
  } catch {
    endpoint = { socketPath: DEFAULT_DOCKER_SOCKET };
  }
  if ('socketPath' in endpoint && !fs.existsSync(endpoint.socketPath)) return Promise.resolve(false);
  return pingDocker(endpoint, timeoutMs);
}

/** diskBytes is the total size of the file system holding workDir (0 when it cannot be read). */
export function diskBytes(workDir: string): number {
  try {
    const s = fs.statfsSync(workDir);
    return s.blocks * s.bsize;
  } catch {
    return 0;
  }
}

/** HostDiscovery is what discoverHost finds: the host without its drivers (the executor asks the driver registry). */
export type HostDiscovery = Omit<Discovery, 'drivers'>;

/** discoverHost inspects the host: cpus, memory (cgroup limit if lower), disk of workDir, gpus, attributes, limits. */
export async function discoverHost(workDir: string): Promise<HostDiscovery> {
  const hostname = os.hostname();
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const total = os.totalmem();
  const cg = cgroupMemLimit();
  const mem = cg !== undefined && cg < total ? cg : total;
  const { model, virtualization } = cpuInfo();
  const gpus = await countGpus();
  return {
    hostname,
    resources: { cpus, mem, disk: diskBytes(workDir), gpus, scalars: {} },
    attributes: {
      hostname,
      os: os.platform(),
      arch: os.arch(),
      kernel: os.release(),
      cpu_model: model,
      virtualization: virtualization ? 'true' : 'false',
      node: process.version,
    },
    limits: detectLimits(),
  };
}

/**
 * discover is discoverHost plus the drivers a local agent offers without an executor: process, and
 * docker when its engine answers (what-if capacity of local agents, src/control/local-capacity.ts).
 */
export async function discover(workDir: string): Promise<Discovery> {
  const [host, docker] = await Promise.all([discoverHost(workDir), dockerAnswers()]);
  return { ...host, drivers: docker ? ['process', 'docker'] : ['process'] };
}
