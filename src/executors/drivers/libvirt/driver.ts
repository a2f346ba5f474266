/**
 * The libvirt driver: runs VM tasks as libvirt domains (`<domain type='qemu'>`) through
 * @unraid/libvirt for domain calls, and `virsh` / `qemu-img` (run with argv, never a shell) for what
 * the binding lacks: networks, reboot, disks and images.
 *
 * Per agent, everything lives in one store folder (see `vmStoreRoot`):
 *
 *   images/…                  the image store (image-store.ts): content-addressed base images
 *   vms/<task with / → .>/    disk.qcow2 (overlay on the base image), console.log (serial), vm.json
 *   volumes/<name>.raw        shared volumes: created once, attached `<shareable/>` to every VM listing them
 *   networks/<name>.xml       the isolated network of each subnet (no forward, no IP, own bridge)
 *
 * Domains are named `fct-<store hash>-<task dir>_<8 hex of the state id>` (legacy: no suffix) and carry
 * `<factory:vm>` metadata naming the task and the state that started it,
 * so a new executor adopts them; an executor only ever sees the domains of its own store.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FactoryError } from '../../../errors.js';
import type { TaskRunSpec, TaskStatus } from '../../../protocol/messages.js';
import type { PowerState, VmAction, VmActionResult, VmImageInfo, VmImageManifest } from '../../../protocol/vm.js';
import type { TaskState } from '../../../scheduler/types.js';
import { stateSuffix, type Driver, type DriverContext, type LogOptions, type StopOptions } from '../driver.js';
import { domainXml, interfaceNetworks, networkXml, parseVmMetadata, type VmMetadata } from './xml.js';
import { taskDirName } from '../process.js';
import { importVmImage, VmImageStore, type ResolvedVmImage } from './image-store.js';
import { KeyedQueue } from '../keyed-queue.js';

/** LIBVIRT_URI is the hypervisor the driver uses (FACTORY_LIBVIRT_URI overrides qemu:///system). */
export const LIBVIRT_URI = process.env.FACTORY_LIBVIRT_URI ?? 'qemu:///system';

/** LIBVIRT_SOCKET is the system daemon's socket; without it the driver is not offered. */
export const LIBVIRT_SOCKET = '/var/run/libvirt/libvirt-sock';

/** DEFAULT_VOLUME_BYTES is the size of a new shared volume (a sparse raw file); FACTORY_VM_VOLUME_SIZE overrides. */
export const DEFAULT_VOLUME_BYTES = Number(process.env.FACTORY_VM_VOLUME_SIZE ?? 1024 ** 3);

// Structural view of @unraid/libvirt: it is an optional dependency, loaded with import().
interface LvDomain {
  create(): Promise<void>;
  shutdown(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  undefine(): Promise<void>;
  getXMLDesc(flags?: number): Promise<string>;
  getInfo(): Promise<{ state: number }>;
  getName(): Promise<string>;
}
interface LvHypervisor {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectListAllDomains(flags?: number): Promise<LvDomain[]>;
  domainDefineXML(xml: string): Promise<LvDomain>;
  domainLookupByName(name: string): Promise<LvDomain>;
}

// virDomainState
const ST = { NOSTATE: 0, RUNNING: 1, BLOCKED: 2, PAUSED: 3, SHUTDOWN: 4, SHUTOFF: 5, CRASHED: 6, PMSUSPENDED: 7 } as const;

/** powerOf maps a libvirt domain state number to a PowerState ('in shutdown' is still running). */
export function powerOf(state: number): PowerState {
  switch (state) {
    case ST.PAUSED:
    case ST.PMSUSPENDED:
      return 'paused';
    case ST.SHUTOFF:
      return 'shut off';
    case ST.CRASHED:
      return 'crashed';
    default:
      return 'running';
  }
}

/** VmRecord is `vm.json`: the run spec and what the driver did with it, beside the VM's disk. */
export interface VmRecord {
  version: 1;
  spec: TaskRunSpec;
  /** image is the id of the base image. */
  image?: string;
  domain: string;
  createdAt: string;
  startedAt?: string;
  /** stoppedAt is set when the VM was shut down on purpose (vm stop, force-off, stop with remove: false). */
  stoppedAt?: string;
  /** imaging is set while the VM's disk is being turned into an image (by the executor with pid). */
  imaging?: { name: string; since: string; pid?: number };
  /** error is why the VM could not be created or started. */
  error?: string;
  /** state is the id of the factory state that started the VM; absent for VMs from before states had ids. */
  state?: string;
}

/** RunTool runs a host tool with an argv; it rejects with a FactoryError quoting stderr. */
export type RunTool = (cmd: string, args: string[], timeoutMs?: number) => Promise<string>;

/** runHostTool is the default RunTool: execFile with a timeout. */
export const runHostTool: RunTool = (cmd, args, timeoutMs = 60_000) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const why = e.code === 'ENOENT' ? `${cmd} is not installed` : e.killed ? `timed out after ${timeoutMs}ms` : (stderr || e.message).trim().split('\n').slice(-3).join('; ');
        reject(new FactoryError(`${cmd} ${args.filter((a) => !a.startsWith('qemu:')).slice(0, 3).join(' ')}: ${why}`, { code: 'E_HOST_TOOL', cause: err }));
        return;
      }
      resolve(stdout);
    });
  });

function shortHash(text: string, n: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, n);
}

function searchable(dir: string): boolean {
  // QEMU runs as another user: every folder on the way must be searchable by others.
  let p = path.resolve(dir);
  for (;;) {
    try {
      if ((fs.statSync(p).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    const up = path.dirname(p);
    if (up === p) return true;
    p = up;
  }
}

/**
 * vmStoreRoot says where the agent's VM store is: the target of the `<workDir>/vm-store` symlink once
 * created (ensureVmStore), else FACTORY_VM_STORE when set, else `<workDir>/vm` when QEMU (user
 * libvirt-qemu) can reach it, else `/var/lib/factory/stores/<hash of workDir>` (QEMU is refused a
 * 0700 state folder). It creates nothing.
 */
export function vmStoreRoot(workDir: string): string {
  try {
    return path.resolve(workDir, fs.readlinkSync(path.join(workDir, 'vm-store')));
  } catch {
    /* not created yet */
  }
  if (process.env.FACTORY_VM_STORE) return path.resolve(process.env.FACTORY_VM_STORE);
  return searchable(workDir) ? path.join(workDir, 'vm') : path.join('/var/lib/factory/stores', shortHash(path.resolve(workDir), 16));
}

/** ensureVmStore creates the store's folders (mode 0755, reachable by QEMU) and the `<workDir>/vm-store` symlink. */
export function ensureVmStore(workDir: string, root: string): void {
  for (const d of ['images', 'vms', 'volumes', 'networks']) fs.mkdirSync(path.join(root, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(root, 0o755);
  try {
    fs.symlinkSync(root, path.join(workDir, 'vm-store'));
  } catch {
    /* exists: chosen before, or by a concurrent executor */
  }
}

/** imagingLive tells whether the executor that started an image is still at it (a crashed one left a stale mark). */
function imagingLive(imaging: { pid?: number }): boolean {
  if (!imaging.pid) return true;
  try {
    process.kill(imaging.pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** LIBVIRT_CONNECT_TIMEOUT_MS bounds the wait for libvirtd to accept a connection. */
export const LIBVIRT_CONNECT_TIMEOUT_MS = 5000;

function libvirtError(what: string, err: unknown): FactoryError {
  if (err instanceof FactoryError) return err;
  return new FactoryError(`${what}: ${(err as Error)?.message ?? String(err)}`, { code: 'E_LIBVIRT', cause: err });
}

function isNotFound(err: unknown): boolean {
  return /not found|no domain with matching/i.test(String((err as Error)?.message ?? err));
}

type LibvirtModule = { Hypervisor: new (o: { uri: string }) => LvHypervisor };

/**
 * libvirtModuleDirs are the node_modules folders searched for @unraid/libvirt when a plain import
 * fails — the SSH transport's executor bundle travels alone, and a native addon cannot be bundled:
 * FACTORY_LIBVIRT_MODULE_DIR, `<workDir>/node_modules`, `~/.factory/node_modules`, then the global npm roots.
 */
export function libvirtModuleDirs(workDir: string): string[] {
  return [
    ...(process.env.FACTORY_LIBVIRT_MODULE_DIR ? [process.env.FACTORY_LIBVIRT_MODULE_DIR] : []),
    path.join(workDir, 'node_modules'),
    path.join(os.homedir(), '.factory', 'node_modules'),
    '/usr/local/lib/node_modules',
    '/usr/lib/node_modules',
  ];
}

async function loadLibvirtModule(workDir: string): Promise<LibvirtModule> {
  try {
    return (await import('@unraid/libvirt' as string)) as LibvirtModule;
  } catch (first) {
    for (const dir of libvirtModuleDirs(workDir)) {
      const pkgDir = path.join(dir, '@unraid', 'libvirt');
      let pkg: { main?: string; exports?: { '.'?: { import?: string } } };
      try {
        pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as typeof pkg;
      } catch {
        continue;
      }
      const entry = pkg.exports?.['.']?.import ?? pkg.main ?? 'index.js';
      return (await import(pathToFileURL(path.join(pkgDir, entry)).href)) as LibvirtModule;
    }
    throw new Error(`@unraid/libvirt cannot be loaded (${(first as Error).message.split('\n')[0]}); install it on the agent (npm install -g @unraid/libvirt, or in <workDir>/node_modules)`);
  }
}

/** LibvirtDriverOptions are for tests and the benchmark. */
export interface LibvirtDriverOptions {
  uri?: string;
  /** storeRoot overrides vmStoreRoot(workDir). */
  storeRoot?: string;
  tool?: RunTool;
}

/** LibvirtDriver runs VM tasks as libvirt domains with qcow2 overlays on base images from the agent's store. */
export class LibvirtDriver implements Driver {
  /** name is always 'libvirt'. */
  readonly name = 'libvirt' as const;
  /** images is the agent's VM image store. */
  readonly images: VmImageStore;
  /** storeRoot is the agent's VM store folder. */
  readonly storeRoot: string;
  private readonly prefix: string;
  private readonly queue = new KeyedQueue();
  private readonly tool: RunTool;
  /** starting holds the tasks a run is creating or adopting: they resolve to this state's own names only. */
  private readonly starting = new Set<string>();

  private constructor(
    private readonly ctx: DriverContext,
    private readonly hv: LvHypervisor,
    private readonly uri: string,
    storeRoot: string,
    tool: RunTool,
  ) {
    this.storeRoot = storeRoot;
    this.images = new VmImageStore(storeRoot);
    this.prefix = `fct-${shortHash(storeRoot, 8)}-`;
    this.tool = tool;
  }

  /**
   * open connects to libvirt; undefined (with the reason logged) when @unraid/libvirt is not installed
   * or the daemon does not answer, so the executor runs on without the driver.
   */
  static async open(ctx: DriverContext, opts: LibvirtDriverOptions = {}): Promise<LibvirtDriver | undefined> {
    const uri = opts.uri ?? LIBVIRT_URI;
    if (uri === 'qemu:///system' && !fs.existsSync(LIBVIRT_SOCKET)) return undefined;
    let mod: LibvirtModule;
    try {
      mod = await loadLibvirtModule(ctx.workDir);
    } catch (err) {
      ctx.log(`executor: libvirt driver unavailable: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
    const hv = new mod.Hypervisor({ uri });
    // the timer is cleared once libvirt answers: left running it kept a finished CLI alive for 5 s
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        hv.connectOpen(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${LIBVIRT_CONNECT_TIMEOUT_MS / 1000} s`)), LIBVIRT_CONNECT_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      ctx.log(`executor: libvirt driver unavailable: ${uri}: ${(err as Error).message}`);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
    const root = opts.storeRoot ?? vmStoreRoot(ctx.workDir);
    return new LibvirtDriver(ctx, hv, uri, root, opts.tool ?? runHostTool);
  }

  /** close ends the libvirt connection (domains keep running). */
  async close(): Promise<void> {
    await this.hv.connectClose().catch(() => undefined);
  }

  /** setState sets the state id of the session (from hello): VMs started from now on carry it. */
  setState(state: string | undefined): void {
    this.ctx.state = state;
  }

  /**
   * key is a task's name in this store for this session's state: `<plan.group.index>_<8 hex of the
   * state id>` (domain `fct-<store hash>-<key>`, folder `vms/<key>`), so two states running the same
   * plan on one store never collide. A legacy VM (folder named `<plan.group.index>`, no state in its
   * vm.json) is found under its old name while this state has none of its own, except by run, which
   * only ever creates or adopts the state's own VM. Another state's VM is never found here.
   */
  private key(task: string): string {
    const base = taskDirName(task);
    const own = base + stateSuffix(this.ctx.state);
    if (!this.ctx.state || this.starting.has(task) || fs.existsSync(path.join(this.storeRoot, 'vms', own))) return own;
    const legacy = this.readRecordIn(base);
    return legacy && legacy.state === undefined ? base : own;
  }

  /** domainName is the libvirt name of a task's domain. */
  domainName(task: string): string {
    return this.prefix + this.key(task);
  }

  /** vmDir is the folder of a task's disk, console log and vm.json. */
  vmDir(task: string): string {
    return path.join(this.storeRoot, 'vms', this.key(task));
  }

  private readRecordIn(dirName: string): VmRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.storeRoot, 'vms', dirName, 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      return undefined;
    }
  }

  private ensureStore(): void {
    ensureVmStore(this.ctx.workDir, this.storeRoot);
  }


  private readRecord(task: string): VmRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.vmDir(task), 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      return undefined;
    }
  }

  private writeRecord(task: string, rec: VmRecord): void {
    const dir = this.vmDir(task);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tmp = path.join(dir, `vm.json.tmp-${process.pid}`);
    fs.writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n');
    fs.renameSync(tmp, path.join(dir, 'vm.json'));
  }

  private updateRecord(task: string, patch: (r: VmRecord) => void): void {
    const rec = this.readRecord(task);
    if (!rec) return;
    patch(rec);
    this.writeRecord(task, rec);
  }

  private async lookup(task: string): Promise<LvDomain | undefined> {
    try {
      return await this.hv.domainLookupByName(this.domainName(task));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw libvirtError(`lookup ${task}`, err);
    }
  }

  private async powerState(dom: LvDomain): Promise<number> {
    return (await dom.getInfo()).state;
  }

  private qemuPid(domain: string): number | undefined {
    try {
      const n = Number(fs.readFileSync(`/var/run/libvirt/qemu/${domain}.pid`, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  private statusFrom(task: string, meta: VmMetadata | undefined, rec: VmRecord | undefined, state: number | undefined, domain = this.domainName(task)): TaskStatus {
    const spec = rec?.spec;
    const labels = meta ? { plan: meta.plan, group: meta.group, project: meta.project } : spec?.labels ?? { plan: '', group: '', project: '' };
    let power: PowerState | undefined = state === undefined ? undefined : powerOf(state);
    let taskState: TaskState;
    if (rec?.imaging && imagingLive(rec.imaging)) {
      power = 'imaging';
      taskState = 'stopped';
    } else if (power === undefined) taskState = rec?.error ? 'failed' : 'exited';
    else if (power === 'running' || power === 'paused') taskState = 'running';
    else if (power === 'crashed') taskState = 'failed';
    else taskState = rec?.stoppedAt ? 'stopped' : 'exited';
    const st: TaskStatus = {
      task,
      driver: 'libvirt',
      state: taskState,
      specHash: meta?.specHash ?? spec?.specHash ?? '',
      labels,
    };
    const stateId = meta?.state ?? rec?.state;
    if (stateId) st.stateId = stateId;
    if (power) st.power = power;
    if (taskState === 'running') {
      const pid = this.qemuPid(domain);
      if (pid) st.pid = pid;
    }
    if (rec?.startedAt) st.startedAt = rec.startedAt;
    if (rec?.stoppedAt && taskState !== 'running') st.finishedAt = rec.stoppedAt;
    if (rec?.error && taskState !== 'running') st.error = rec.error;
    if (power === 'crashed') st.error = 'the guest crashed';
    if (spec?.resources) st.resources = spec.resources;
    return st;
  }

  private async statusOfDomain(dom: LvDomain, task?: string): Promise<TaskStatus | undefined> {
    const meta = parseVmMetadata(await dom.getXMLDesc());
    if (!meta || (task !== undefined && meta.task !== task)) return undefined;
    if (meta.store !== this.storeRoot) return undefined;
    // the folder is named like the domain (another state's VM has its own): read the record by name
    const name = await dom.getName();
    const dirName = name.startsWith(this.prefix) ? name.slice(this.prefix.length) : this.key(meta.task);
    return this.statusFrom(meta.task, meta, this.readRecordIn(dirName), await this.powerState(dom), name);
  }

  /**
   * status reports one VM task, or undefined when this store has no trace of it. Every VM of the store
   * has a folder (written before its domain is defined), so other drivers' tasks never reach libvirt.
   */
  async status(task: string): Promise<TaskStatus | undefined> {
    taskDirName(task);
    if (!fs.existsSync(this.vmDir(task))) return undefined;
    const dom = await this.lookup(task);
    if (dom) {
      try {
        const s = await this.statusOfDomain(dom, task);
        if (s) return s;
      } catch (err) {
        if (!isNotFound(err)) throw libvirtError(`inspect ${task}`, err);
      }
    }
    const rec = this.readRecord(task);
    return rec ? this.statusFrom(task, undefined, rec, undefined) : undefined;
  }

  /**
   * inspect reports every VM of this store: its domains, and VM folders whose domain is gone. A store
   * without VMs answers without asking libvirt (an agent whose libvirtd went away still serves its
   * other tasks); with VMs, a lost connection is reopened once.
   */
  async inspect(): Promise<TaskStatus[]> {
    const out: TaskStatus[] = [];
    const seen = new Set<string>();
    let dirs: string[] = [];
    try {
      dirs = fs.readdirSync(path.join(this.storeRoot, 'vms'));
    } catch {
      /* none */
    }
    if (!dirs.length) return out;
    let doms: LvDomain[];
    try {
      doms = await this.hv.connectListAllDomains();
    } catch {
      try {
        await this.hv.connectOpen();
        doms = await this.hv.connectListAllDomains();
      } catch (err) {
        throw libvirtError('list domains', err);
      }
    }
    for (const dom of doms) {
      try {
        const name = await dom.getName();
        if (!name.startsWith(this.prefix)) continue;
        const s = await this.statusOfDomain(dom);
        if (s) {
          out.push(s);
          seen.add(name.slice(this.prefix.length));
        }
      } catch {
        /* the domain went away while we looked */
      }
    }
    for (const d of dirs) {
      let rec: VmRecord | undefined;
      try {
        rec = JSON.parse(fs.readFileSync(path.join(this.storeRoot, 'vms', d, 'vm.json'), 'utf8')) as VmRecord;
      } catch {
        continue;
      }
      if (!rec?.spec?.task || seen.has(d)) continue;
      out.push(this.statusFrom(rec.spec.task, undefined, rec, undefined, this.prefix + d));
    }
    return out;
  }

  /** run creates the VM (overlay, network, volumes, domain) and starts it; an existing VM with the same specHash is started or adopted. */
  run(spec: TaskRunSpec): Promise<TaskStatus> {
    taskDirName(spec.task);
    return this.queue.run(spec.task, async () => {
      this.starting.add(spec.task);
      try {
        return await this.runLocked(spec);
      } finally {
        this.starting.delete(spec.task);
      }
    });
  }

  private async runLocked(spec: TaskRunSpec): Promise<TaskStatus> {
    {
      this.ensureStore();
      const dom = await this.lookup(spec.task);
      if (dom) {
        const meta = parseVmMetadata(await dom.getXMLDesc());
        if (meta && meta.specHash === spec.specHash && meta.store === this.storeRoot) {
          const state = await this.powerState(dom);
          this.updateRecord(spec.task, (r) => {
            delete r.stoppedAt;
            delete r.error;
          });
          try {
            if (state === ST.PAUSED || state === ST.PMSUSPENDED) await dom.resume();
            else if (powerOf(state) === 'shut off' || state === ST.CRASHED) {
              if (state === ST.CRASHED) await dom.destroy().catch(() => undefined);
              await dom.create();
              this.updateRecord(spec.task, (r) => (r.startedAt = new Date().toISOString()));
            }
          } catch (err) {
            return this.failed(spec, `cannot start: ${libvirtError('start', err).message}`);
          }
          return (await this.status(spec.task))!;
        }
        await this.removeVm(spec.task, dom, 0);
      }
      return this.create(spec);
    }
  }

  private failed(spec: TaskRunSpec, error: string): TaskStatus {
    const prev = this.readRecord(spec.task);
    this.writeRecord(spec.task, {
      version: 1,
      spec,
      domain: this.domainName(spec.task),
      createdAt: prev?.createdAt ?? new Date().toISOString(),
      ...(prev?.image ? { image: prev.image } : {}),
      ...(this.ctx.state ? { state: this.ctx.state } : {}),
      error,
    });
    return this.statusFrom(spec.task, undefined, this.readRecord(spec.task), undefined);
  }

  private async create(spec: TaskRunSpec): Promise<TaskStatus> {
    if (!spec.image) return this.failed(spec, 'a VM needs an image');
    const img = this.images.resolve(spec.image);
    if (!img) return this.failed(spec, `image '${spec.image}' is not in this agent's image store (push it with: factory vm push DIR --name ${spec.image})`);
    const base = path.join(img.dir, 'disk.qcow2');
    const dir = this.vmDir(spec.task);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const disk = path.join(dir, 'disk.qcow2');
    const name = this.domainName(spec.task);
    const now = new Date().toISOString();
    const rec: VmRecord = { version: 1, spec, image: img.id, domain: name, createdAt: now, ...(this.ctx.state ? { state: this.ctx.state } : {}) };
    this.writeRecord(spec.task, rec);
    let dom: LvDomain | undefined;
    try {
      await this.tool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', disk]);
      const network = spec.vm?.subnet ? await this.ensureNetwork(spec.vm.subnet) : undefined;
      const volumes = await this.ensureVolumes(spec.vm?.volumes ?? []);
      const xml = domainXml({
        name,
        vcpus: spec.resources.cpus || 1,
        memMiB: spec.resources.mem ? spec.resources.mem / (1024 * 1024) : 256,
        disk,
        ...(img.manifest.files.kernel ? { kernel: path.join(img.dir, 'kernel') } : {}),
        ...(img.manifest.files.initrd ? { initrd: path.join(img.dir, 'initrd') } : {}),
        ...(img.manifest.cmdline ? { cmdline: img.manifest.cmdline } : {}),
        ...(network ? { network } : {}),
        volumes,
        consoleLog: path.join(dir, 'console.log'),
        metadata: {
          task: spec.task,
          plan: spec.labels.plan,
          group: spec.labels.group,
          project: spec.labels.project,
          specHash: spec.specHash,
          image: img.id,
          store: this.storeRoot,
          ...(this.ctx.state ? { state: this.ctx.state } : {}),
        },
      });
      dom = await this.hv.domainDefineXML(xml);
      await dom.create();
      rec.startedAt = new Date().toISOString();
      this.writeRecord(spec.task, rec);
    } catch (err) {
      if (dom) await dom.undefine().catch(() => undefined);
      fs.rmSync(disk, { force: true });
      return this.failed(spec, libvirtError('create VM', err).message);
    }
    return (await this.status(spec.task))!;
  }

  /** networkName is the libvirt network of a subnet in this store. */
  networkName(subnet: string): string {
    return `${this.prefix}${subnet}`;
  }

  private ensureNetwork(subnet: string): Promise<string> {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(subnet)) throw new FactoryError(`bad subnet name ${JSON.stringify(subnet)}`, { code: 'E_BAD_REQUEST' });
    const net = this.networkName(subnet);
    return this.queue.run(`net:${net}`, async () => {
      const uri = ['-c', this.uri];
      let info = await this.tool('virsh', [...uri, 'net-info', net]).catch(() => undefined);
      if (info === undefined) {
        const file = path.join(this.storeRoot, 'networks', `${subnet}.xml`);
        fs.writeFileSync(file, networkXml(net, `fv${shortHash(`${this.storeRoot}/${subnet}`, 11)}`));
        await this.tool('virsh', [...uri, 'net-define', file]).catch(async (err) => {
          if ((await this.tool('virsh', [...uri, 'net-info', net]).catch(() => undefined)) === undefined) throw err;
        });
        info = await this.tool('virsh', [...uri, 'net-info', net]);
      }
      if (!/^Active:\s+yes/m.test(info)) {
        await this.tool('virsh', [...uri, 'net-start', net]).catch(async (err) => {
          if (!/^Active:\s+yes/m.test(await this.tool('virsh', [...uri, 'net-info', net]))) throw err;
        });
      }
      return net;
    });
  }

  private async ensureVolumes(names: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const v of names) {
      if (!/^[a-z0-9][a-z0-9-]*$/.test(v)) throw new FactoryError(`bad volume name ${JSON.stringify(v)}`, { code: 'E_BAD_REQUEST' });
      const file = path.join(this.storeRoot, 'volumes', `${v}.raw`);
      try {
        const fd = fs.openSync(file, 'wx', 0o644);
        fs.ftruncateSync(fd, DEFAULT_VOLUME_BYTES);
        fs.closeSync(fd);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      out.push(file);
    }
    return out;
  }

  /** volumePath is the file of a shared volume in this store. */
  volumePath(name: string): string {
    return path.join(this.storeRoot, 'volumes', `${name}.raw`);
  }

  private async waitShutOff(dom: LvDomain, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      const s = await this.powerState(dom).catch(() => ST.SHUTOFF);
      if (s === ST.SHUTOFF) return true;
      if (Date.now() >= until) return false;
      await sleep(100);
    }
  }

  /** shutdownDomain sends the ACPI power button, waits up to graceMs, then forces the VM off. */
  private async shutdownDomain(dom: LvDomain, graceMs: number): Promise<'acpi' | 'forced' | 'already'> {
    const s = await this.powerState(dom);
    if (s === ST.SHUTOFF) return 'already';
    if (s === ST.RUNNING || s === ST.BLOCKED || s === ST.SHUTDOWN) {
      try {
        if (graceMs > 0) {
          await dom.shutdown();
          if (await this.waitShutOff(dom, graceMs)) return 'acpi';
        }
      } catch {
        /* fall through to destroy */
      }
    }
    await dom.destroy().catch((err) => {
      if (!/not running/i.test(String((err as Error).message))) throw libvirtError('force off', err);
    });
    await this.waitShutOff(dom, 10_000);
    return 'forced';
  }

  private async removeVm(task: string, dom: LvDomain | undefined, graceMs: number): Promise<void> {
    if (dom) {
      await this.shutdownDomain(dom, graceMs).catch(() => undefined);
      await dom.undefine().catch((err) => {
        if (!isNotFound(err)) throw libvirtError(`undefine ${task}`, err);
      });
    }
    fs.rmSync(this.vmDir(task), { recursive: true, force: true });
  }

  /** stop shuts the VM down (ACPI, then force off after graceMs); remove (default) deletes the domain and its disk. */
  stop(task: string, opts: StopOptions = {}): Promise<TaskStatus> {
    taskDirName(task);
    return this.queue.run(task, async () => {
      const rec = this.readRecord(task);
      const dom = await this.lookup(task);
      const grace = opts.graceMs ?? rec?.spec.stopGraceMs ?? 10_000;
      const labels = rec?.spec.labels ?? { plan: '', group: '', project: '' };
      if (opts.remove === false) {
        if (dom) await this.shutdownDomain(dom, grace);
        this.updateRecord(task, (r) => (r.stoppedAt = new Date().toISOString()));
        return (await this.status(task)) ?? { task, driver: 'libvirt', state: 'stopped', specHash: '', labels };
      }
      await this.removeVm(task, dom, grace);
      await this.collectNetworks().catch((err) => this.ctx.log(`executor: libvirt: cannot remove unused networks: ${(err as Error).message}`));
      return { task, driver: 'libvirt', state: 'stopped', specHash: rec?.spec.specHash ?? '', labels, power: 'shut off' };
    });
  }

  /** collectNetworks removes this store's networks that no domain of the store uses any more. */
  private async collectNetworks(): Promise<void> {
    const uri = ['-c', this.uri];
    const nets = (await this.tool('virsh', [...uri, 'net-list', '--all', '--name'])).split('\n').map((l) => l.trim()).filter((l) => l.startsWith(this.prefix));
    if (!nets.length) return;
    const used = new Set<string>();
    for (const dom of await this.hv.connectListAllDomains()) {
      try {
        if ((await dom.getName()).startsWith(this.prefix)) for (const n of interfaceNetworks(await dom.getXMLDesc())) used.add(n);
      } catch {
        /* gone */
      }
    }
    for (const net of nets) {
      if (used.has(net)) continue;
      await this.queue.run(`net:${net}`, async () => {
        await this.tool('virsh', [...uri, 'net-destroy', net]).catch(() => undefined);
        await this.tool('virsh', [...uri, 'net-undefine', net]).catch(() => undefined);
      });
    }
  }

  /** action runs a power action (or makes an image) on one VM and reports its power state after. */
  action(task: string, action: VmAction, opts: { imageName?: string; timeoutMs?: number } = {}): Promise<VmActionResult> {
    taskDirName(task);
    return this.queue.run(task, async () => {
      const dom = await this.lookup(task);
      if (!dom) throw new FactoryError(`VM ${task} is not defined on this agent (apply its plan first: factory plan apply)`, { code: 'E_NOT_FOUND' });
      const rec = this.readRecord(task);
      const state = await this.powerState(dom);
      const now = () => new Date().toISOString();
      let image: VmActionResult['image'];
      switch (action) {
        case 'start':
          if (state === ST.PAUSED || state === ST.PMSUSPENDED) await dom.resume().catch((e) => Promise.reject(libvirtError('resume', e)));
          else if (state === ST.SHUTOFF || state === ST.CRASHED) {
            if (state === ST.CRASHED) await dom.destroy().catch(() => undefined);
            await dom.create().catch((e) => Promise.reject(libvirtError('start', e)));
            this.updateRecord(task, (r) => (r.startedAt = now()));
          }
          this.updateRecord(task, (r) => {
            delete r.stoppedAt;
            delete r.error;
          });
          break;
        case 'stop':
          await this.shutdownDomain(dom, opts.timeoutMs ?? Math.max(rec?.spec.stopGraceMs ?? 0, 30_000));
          this.updateRecord(task, (r) => (r.stoppedAt = now()));
          break;
        case 'force-off':
          await this.shutdownDomain(dom, 0);
          this.updateRecord(task, (r) => (r.stoppedAt = now()));
          break;
        case 'reboot':
          if (powerOf(state) !== 'running') throw new FactoryError(`VM ${task} is ${powerOf(state)}: only a running VM reboots (start it: factory vm start ${task})`, { code: 'E_VM_STATE' });
          await this.tool('virsh', ['-c', this.uri, 'reboot', this.domainName(task), '--mode', 'acpi']);
          break;
        case 'image':
          image = await this.makeImage(task, state, opts.imageName);
          break;
        default:
          throw new FactoryError(`unknown VM action ${JSON.stringify(action)}`, { code: 'E_BAD_REQUEST' });
      }
      const st = await this.status(task);
      return { task, action, power: st?.power ?? 'shut off', ...(image ? { image } : {}) };
    });
  }

  private async makeImage(task: string, state: number, name: string | undefined): Promise<{ id: string; name: string }> {
    if (!name) throw new FactoryError('vm image needs the new image name', { code: 'E_BAD_REQUEST' });
    if (state !== ST.SHUTOFF) {
      // hints do not cross the protocol: the advice is part of the message
      throw new FactoryError(`VM ${task} is ${powerOf(state)}: only a shut off VM can be imaged (shut it down first: factory vm stop ${task})`, { code: 'E_VM_STATE' });
    }
    const rec = this.readRecord(task);
    const parent = rec?.image ? this.images.resolve(rec.image) : undefined;
    const since = new Date().toISOString();
    this.updateRecord(task, (r) => (r.imaging = { name, since, pid: process.pid }));
    const out = path.join(this.images.dir, 'incoming', `convert-${shortHash(task + since, 12)}.qcow2`);
    try {
      fs.mkdirSync(path.dirname(out), { recursive: true, mode: 0o755 });
      await this.tool('qemu-img', ['convert', '-q', '-O', 'qcow2', path.join(this.vmDir(task), 'disk.qcow2'), out], 60 * 60_000);
      const made: ResolvedVmImage = await importVmImage(
        this.images,
        name,
        {
          files: {
            'disk.qcow2': out,
            ...(parent?.manifest.files.kernel ? { kernel: path.join(parent.dir, 'kernel') } : {}),
            ...(parent?.manifest.files.initrd ? { initrd: path.join(parent.dir, 'initrd') } : {}),
          },
          ...(parent?.manifest.cmdline !== undefined ? { cmdline: parent.manifest.cmdline } : {}),
          ...(parent ? { parent: parent.id } : {}),
        },
        ['disk.qcow2'],
      );
      return { id: made.id, name };
    } finally {
      fs.rmSync(out, { force: true });
      this.updateRecord(task, (r) => delete r.imaging);
    }
  }

  /** imagePut stores one chunk of an image upload. */
  imagePut(id: string, file: string, offset: number, data: string): { received: number } {
    this.ensureStore();
    return this.images.put(id, file, offset, Buffer.from(data, 'base64'));
  }

  /** imageCommit verifies and commits an uploaded image under name. */
  async imageCommit(id: string, name: string, manifest: VmImageManifest): Promise<{ id: string; name: string }> {
    this.ensureStore();
    await this.images.commit(id, name, manifest);
    return { id, name };
  }

  /** imageList lists the store's images. */
  imageList(): VmImageInfo[] {
    return this.images.list();
  }

  /** logs streams the VM's serial console (as stdout); with follow it polls until the signal aborts. */
  async logs(task: string, opts: LogOptions, onData: (stream: 'stdout' | 'stderr', data: string) => void, signal: AbortSignal): Promise<void> {
    if (opts.stream === 'stderr') return;
    const file = path.join(this.vmDir(task), 'console.log');
    let pos = 0;
    const readFrom = (): string => {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        return '';
      }
      try {
        const size = fs.fstatSync(fd).size;
        if (size < pos) pos = 0;
        if (size === pos) return '';
        const buf = Buffer.alloc(Math.min(size - pos, 1024 * 1024));
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        pos += n;
        return buf.subarray(0, n).toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    };
    let first = '';
    for (let chunk = readFrom(); chunk; chunk = readFrom()) first += chunk;
    if (opts.tail !== undefined) {
      const lines = first.split('\n');
      const endsWithNl = first.endsWith('\n');
      const body = endsWithNl ? lines.slice(0, -1) : lines;
      first = body.slice(Math.max(0, body.length - opts.tail)).join('\n') + (endsWithNl && body.length ? '\n' : '');
    }
    if (first) onData('stdout', first);
    while (opts.follow && !signal.aborted) {
      await sleep(250);
      const more = readFrom();
      if (more) onData('stdout', more);
    }
  }
}
