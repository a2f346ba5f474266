/**
 * The libvirt driver: runs VM tasks as libvirt domains (`<domain type='qemu'>`) through
 * @unraid/libvirt for domain calls, and `virsh` / `qemu-img` (run with argv, never a shell) for what
 * the binding lacks: networks, reboot, disks and images.
 *
 * This file is the task lifecycle (run, stop, status, inspect) and the entry of the power and image
 * calls; the store and its names are store.ts, and each other concern has its own file (README.md).
 * Domains carry `<factory:vm>` metadata naming the task and the state that started it, so a new
 * executor adopts them; an executor only ever sees the domains of its own store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import type { TaskHealthCheck, TaskRunSpec, TaskStatus } from '../../../protocol/messages.js';
import type { VmAction, VmActionResult, VmImageInfo, VmImageManifest } from '../../../protocol/vm.js';
import type { Driver, DriverContext, LogOptions, StopOptions } from '../driver.js';
import { KeyedQueue } from '../keyed-queue.js';
import { taskDirName } from '../shared/task-id.js';
import { connectLibvirt, isNotFound, LIBVIRT_URI, libvirtError, type Libvirt, type LvDomain } from './connection.js';
import { streamConsole } from './console.js';
import { runHostTool, type RunTool } from './host-tool.js';
import type { VmImageStore } from './image-store.js';
import { makeImage } from './imaging.js';
import { hasVmCheck, nicOf, proberLive, startVmProber, stopVmProber } from './health.js';
import { enableHostLink, VmNetworks } from './networks.js';
import { readHealth } from '../process/health.js';
import { DOMAIN_STATE as ST, powerAction, powerOf, powerState, shutdownDomain } from './power.js';
import { vmStatus } from './status.js';
import { vmStoreRoot, VmStore, type VmRecord } from './store.js';
import { ensureVolumes, volumePath } from './volumes.js';
import { domainXml, parseVmMetadata } from './xml.js';

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
  private readonly store: VmStore;
  private readonly networks: VmNetworks;
  private readonly queue = new KeyedQueue();

  private constructor(
    private readonly ctx: DriverContext,
    private readonly lv: Libvirt,
    storeRoot: string,
  ) {
    this.storeRoot = storeRoot;
    this.store = new VmStore(ctx, storeRoot);
    this.images = this.store.images;
    this.networks = new VmNetworks(lv, this.store, this.queue);
  }

  /**
   * open connects to libvirt; undefined (with the reason logged) when @unraid/libvirt is not installed
   * or the daemon does not answer, so the executor runs on without the driver.
   */
  static async open(ctx: DriverContext, opts: LibvirtDriverOptions = {}): Promise<LibvirtDriver | undefined> {
    const uri = opts.uri ?? LIBVIRT_URI;
    const hv = await connectLibvirt(ctx, uri);
    if (!hv) return undefined;
    return new LibvirtDriver(ctx, { hv, uri, tool: opts.tool ?? runHostTool }, opts.storeRoot ?? vmStoreRoot(ctx.workDir));
  }

  /** close ends the libvirt connection (domains keep running). */
  async close(): Promise<void> {
    await this.lv.hv.connectClose().catch(() => undefined);
  }

  /** setState sets the state id of the session (from hello): VMs started from now on carry it. */
  setState(state: string | undefined): void {
    this.ctx.state = state;
  }

  /** domainName is the libvirt name of a task's domain. */
  domainName(task: string): string {
    return this.store.domainName(task);
  }

  /** vmDir is the folder of a task's disk, console log and vm.json. */
  vmDir(task: string): string {
    return this.store.vmDir(task);
  }

  /** networkName is the libvirt network of a subnet in this store. */
  networkName(subnet: string): string {
    return this.networks.name(subnet);
  }

  /** volumePath is the file of a shared volume in this store. */
  volumePath(name: string): string {
    return volumePath(this.storeRoot, name);
  }

  private async lookup(task: string): Promise<LvDomain | undefined> {
    try {
      return await this.lv.hv.domainLookupByName(this.store.domainName(task));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw libvirtError(`lookup ${task}`, err);
    }
  }

  private async statusOfDomain(dom: LvDomain, task?: string): Promise<TaskStatus | undefined> {
    const xml = await dom.getXMLDesc();
    const meta = parseVmMetadata(xml);
    if (!meta || (task !== undefined && meta.task !== task)) return undefined;
    if (meta.store !== this.storeRoot) return undefined;
    // the folder is named like the domain (another state's VM has its own): read the record by name
    const name = await dom.getName();
    const prefix = this.store.prefix;
    const dirName = name.startsWith(prefix) ? name.slice(prefix.length) : this.store.key(meta.task);
    const rec = this.store.readRecordIn(dirName);
    const st = vmStatus(meta.task, meta, rec, await powerState(dom), name);
    if (st.state === 'running' && st.power === 'running' && hasVmCheck(rec?.spec.health)) this.checkHealth(st, path.join(this.storeRoot, 'vms', dirName), rec.spec.health, rec.spec.env, xml, name);
    return st;
  }

  /**
   * checkHealth reports a running VM's health as its prober last wrote it (health.ts), and starts the
   * prober when the VM has none watching its QEMU (a new VM, one started again, a new executor). An
   * unhealthy VM stays running (supervision does not recreate it); a deployment counts it failed.
   */
  private checkHealth(st: TaskStatus, dir: string, health: TaskHealthCheck, env: Record<string, string> | undefined, xml: string, domain: string): void {
    // synchronous from the check to prober.json: two status calls of one session cannot both start one
    if (st.pid !== undefined && !proberLive(dir, st.pid)) {
      const nic = nicOf(xml);
      if (nic) {
        try {
          enableHostLink(nic.bridge);
        } catch (err) {
          this.ctx.log(`libvirt driver: ${st.task}: cannot give bridge ${nic.bridge} its IPv6 link-local address (the health check cannot reach the VM): ${(err as Error).message}`);
        }
      }
      startVmProber({ dir, qemuPid: st.pid, domain, health, env: env ?? {}, ...(nic ? { nic } : {}) }, this.ctx.log);
    }
    st.health = readHealth(dir).health;
  }

  /**
   * status reports one VM task, or undefined when this store has no trace of it. Every VM of the store
   * has a folder (written before its domain is defined), so other drivers' tasks never reach libvirt.
   */
  async status(task: string): Promise<TaskStatus | undefined> {
    taskDirName(task);
    if (!fs.existsSync(this.store.vmDir(task))) return undefined;
    const dom = await this.lookup(task);
    if (dom) {
      try {
        const s = await this.statusOfDomain(dom, task);
        if (s) return s;
      } catch (err) {
        if (!isNotFound(err)) throw libvirtError(`inspect ${task}`, err);
      }
    }
    const rec = this.store.readRecord(task);
    return rec ? vmStatus(task, undefined, rec, undefined, this.store.domainName(task)) : undefined;
  }

  /**
   * inspect reports every VM of this store: its domains, and VM folders whose domain is gone. A store
   * without VMs answers without asking libvirt (an agent whose libvirtd went away still serves its
   * other tasks); with VMs, a lost connection is reopened once.
   */
  async inspect(): Promise<TaskStatus[]> {
    const out: TaskStatus[] = [];
    const seen = new Set<string>();
    const dirs = this.store.vmDirNames();
    if (!dirs.length) return out;
    const hv = this.lv.hv;
    let doms: LvDomain[];
    try {
      doms = await hv.connectListAllDomains();
    } catch {
      try {
        await hv.connectOpen();
        doms = await hv.connectListAllDomains();
      } catch (err) {
        throw libvirtError('list domains', err);
      }
    }
    const prefix = this.store.prefix;
    for (const dom of doms) {
      try {
        const name = await dom.getName();
        if (!name.startsWith(prefix)) continue;
        const s = await this.statusOfDomain(dom);
        if (s) {
          out.push(s);
          seen.add(name.slice(prefix.length));
        }
      } catch {
        /* the domain went away while we looked */
      }
    }
    for (const d of dirs) {
      const rec = this.store.readRecordIn(d);
      if (!rec?.spec?.task || seen.has(d)) continue;
      out.push(vmStatus(rec.spec.task, undefined, rec, undefined, prefix + d));
    }
    return out;
  }

  /** run creates the VM (overlay, network, volumes, domain) and starts it; an existing VM with the same specHash is started or adopted. */
  run(spec: TaskRunSpec): Promise<TaskStatus> {
    taskDirName(spec.task);
    return this.queue.run(spec.task, async () => {
      this.store.starting.add(spec.task);
      try {
        return await this.runLocked(spec);
      } finally {
        this.store.starting.delete(spec.task);
      }
    });
  }

  private async runLocked(spec: TaskRunSpec): Promise<TaskStatus> {
    this.store.ensure();
    const dom = await this.lookup(spec.task);
    if (dom) {
      const meta = parseVmMetadata(await dom.getXMLDesc());
      if (meta && meta.specHash === spec.specHash && meta.store === this.storeRoot) {
        const state = await powerState(dom);
        this.store.updateRecord(spec.task, (r) => {
          delete r.stoppedAt;
          delete r.error;
        });
        try {
          if (state === ST.PAUSED || state === ST.PMSUSPENDED) await dom.resume();
          else if (powerOf(state) === 'shut off' || state === ST.CRASHED) {
            if (state === ST.CRASHED) await dom.destroy().catch(() => undefined);
            await dom.create();
            this.store.updateRecord(spec.task, (r) => (r.startedAt = new Date().toISOString()));
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

  private failed(spec: TaskRunSpec, error: string): TaskStatus {
    const prev = this.store.readRecord(spec.task);
    this.store.writeRecord(spec.task, {
      version: 1,
      spec,
      domain: this.store.domainName(spec.task),
      createdAt: prev?.createdAt ?? new Date().toISOString(),
      ...(prev?.image ? { image: prev.image } : {}),
      ...(this.ctx.state ? { state: this.ctx.state } : {}),
      error,
    });
    return vmStatus(spec.task, undefined, this.store.readRecord(spec.task), undefined, this.store.domainName(spec.task));
  }

  private async create(spec: TaskRunSpec): Promise<TaskStatus> {
    if (!spec.image) return this.failed(spec, 'a VM needs an image');
    const img = this.images.resolve(spec.image);
    if (!img) return this.failed(spec, `image '${spec.image}' is not in this agent's image store (push it with: factory vm push DIR --name ${spec.image})`);
    const base = path.join(img.dir, 'disk.qcow2');
    const dir = this.store.vmDir(spec.task);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const disk = path.join(dir, 'disk.qcow2');
    const name = this.store.domainName(spec.task);
    const now = new Date().toISOString();
    const rec: VmRecord = { version: 1, spec, image: img.id, domain: name, createdAt: now, ...(this.ctx.state ? { state: this.ctx.state } : {}) };
    this.store.writeRecord(spec.task, rec);
    let dom: LvDomain | undefined;
    try {
      await this.lv.tool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', disk]);
      const network = spec.vm?.subnet ? await this.networks.ensure(spec.vm.subnet) : undefined;
      const volumes = await ensureVolumes(this.storeRoot, spec.vm?.volumes ?? []);
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
      dom = await this.lv.hv.domainDefineXML(xml);
      await dom.create();
      rec.startedAt = new Date().toISOString();
      this.store.writeRecord(spec.task, rec);
    } catch (err) {
      if (dom) await dom.undefine().catch(() => undefined);
      fs.rmSync(disk, { force: true });
      return this.failed(spec, libvirtError('create VM', err).message);
    }
    return (await this.status(spec.task))!;
  }

  private async removeVm(task: string, dom: LvDomain | undefined, graceMs: number): Promise<void> {
    stopVmProber(this.store.vmDir(task));
    if (dom) {
      await shutdownDomain(dom, graceMs).catch(() => undefined);
      await dom.undefine().catch((err) => {
        if (!isNotFound(err)) throw libvirtError(`undefine ${task}`, err);
      });
    }
    fs.rmSync(this.store.vmDir(task), { recursive: true, force: true });
  }

  /** stop shuts the VM down (ACPI, then force off after graceMs); remove (default) deletes the domain and its disk. */
  stop(task: string, opts: StopOptions = {}): Promise<TaskStatus> {
    taskDirName(task);
    return this.queue.run(task, async () => {
      const rec = this.store.readRecord(task);
      const dom = await this.lookup(task);
      const grace = opts.graceMs ?? rec?.spec.stopGraceMs ?? 10_000;
      const labels = rec?.spec.labels ?? { plan: '', group: '', project: '' };
      if (opts.remove === false) {
        if (dom) await shutdownDomain(dom, grace);
        this.store.updateRecord(task, (r) => (r.stoppedAt = new Date().toISOString()));
        return (await this.status(task)) ?? { task, driver: 'libvirt', state: 'stopped', specHash: '', labels };
      }
      await this.removeVm(task, dom, grace);
      await this.networks.collect().catch((err) => this.ctx.log(`executor: libvirt: cannot remove unused networks: ${(err as Error).message}`));
      return { task, driver: 'libvirt', state: 'stopped', specHash: rec?.spec.specHash ?? '', labels, power: 'shut off' };
    });
  }

  /** action runs a power action (or makes an image) on one VM and reports its power state after. */
  action(task: string, action: VmAction, opts: { imageName?: string; timeoutMs?: number } = {}): Promise<VmActionResult> {
    taskDirName(task);
    return this.queue.run(task, async () => {
      const dom = await this.lookup(task);
      if (!dom) throw new FactoryError(`VM ${task} is not defined on this agent (apply its plan first: factory plan apply)`, { code: 'E_NOT_FOUND' });
      const state = await powerState(dom);
      let image: VmActionResult['image'];
      if (action === 'image') image = await makeImage(this.store, this.lv.tool, task, state, opts.imageName);
      else await powerAction(this.lv, this.store, task, dom, state, action, { timeoutMs: opts.timeoutMs });
      const st = await this.status(task);
      return { task, action, power: st?.power ?? 'shut off', ...(image ? { image } : {}) };
    });
  }

  /** imageHas tells whether the store holds the image with this id. */
  imageHas(id: string): boolean {
    return this.images.has(id);
  }

  /** imagePut stores one chunk of an image upload. */
  imagePut(id: string, file: string, offset: number, data: string): { received: number } {
    this.store.ensure();
    return this.images.put(id, file, offset, Buffer.from(data, 'base64'));
  }

  /** imageCommit verifies and commits an uploaded image under name. */
  async imageCommit(id: string, name: string, manifest: VmImageManifest): Promise<{ id: string; name: string }> {
    this.store.ensure();
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
    await streamConsole(path.join(this.store.vmDir(task), 'console.log'), opts, onData, signal);
  }
}
