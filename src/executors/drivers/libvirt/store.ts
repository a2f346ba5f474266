/**
 * The agent's VM store and how a task is named in it. Per agent, everything lives in one folder
 * (see vmStoreRoot):
 *
 *   images/…                  the image store (image-store.ts): content-addressed base images
 *   vms/<key>/                disk.qcow2 (overlay on the base image), console.log (serial), vm.json
 *   volumes/<name>.raw        shared volumes (volumes.ts)
 *   networks/<name>.xml       the isolated network of each subnet (networks.ts)
 *
 * A task's key is `<task with / → .>_<8 hex of the state id>` (legacy: no suffix); its domain is
 * `fct-<store hash>-<key>`, so an executor only ever sees the domains of its own store.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TaskRunSpec } from '../../../protocol/messages.js';
import { stateSuffix, type DriverContext } from '../driver.js';
import { taskDirName } from '../shared/task-id.js';
import { VmImageStore } from './image-store.js';

/** shortHash is the first n hex digits of sha256(text): store prefixes, bridge names, temp names. */
export function shortHash(text: string, n: number): string {
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

/** VmStore is one agent's store as a session sees it: its folders, the names of its VMs and their vm.json records. */
export class VmStore {
  /** images is the store's image store. */
  readonly images: VmImageStore;
  /** prefix starts the name of every domain (and network) of this store: `fct-<8 hex of the root>-`. */
  readonly prefix: string;
  /** starting holds the tasks a run is creating or adopting: they resolve to this state's own names only. */
  readonly starting = new Set<string>();

  /** The store reads the session's state id from the driver's ctx at every lookup: setState takes effect at once. */
  constructor(
    private readonly ctx: DriverContext,
    /** root is the store's folder. */
    readonly root: string,
  ) {
    this.images = new VmImageStore(root);
    this.prefix = `fct-${shortHash(root, 8)}-`;
  }

  /** ensure creates the store's folders (nothing exists until the first VM or image). */
  ensure(): void {
    ensureVmStore(this.ctx.workDir, this.root);
  }

  /**
   * key is a task's name in this store for this session's state: `<plan.group.index>_<8 hex of the
   * state id>` (domain `fct-<store hash>-<key>`, folder `vms/<key>`), so two states running the same
   * plan on one store never collide. A legacy VM (folder named `<plan.group.index>`, no state in its
   * vm.json) is found under its old name while this state has none of its own, except by run, which
   * only ever creates or adopts the state's own VM. Another state's VM is never found here.
   */
  key(task: string): string {
    const base = taskDirName(task);
    const own = base + stateSuffix(this.ctx.state);
    if (!this.ctx.state || this.starting.has(task) || fs.existsSync(path.join(this.root, 'vms', own))) return own;
    const legacy = this.readRecordIn(base);
    return legacy && legacy.state === undefined ? base : own;
  }

  /** domainName is the libvirt name of a task's domain. */
  domainName(task: string): string {
    return this.prefix + this.key(task);
  }

  /** vmDir is the folder of a task's disk, console log and vm.json. */
  vmDir(task: string): string {
    return path.join(this.root, 'vms', this.key(task));
  }

  /** vmDirNames lists the folders under vms/ (each a VM of some state, or a legacy one); [] before the first VM. */
  vmDirNames(): string[] {
    try {
      return fs.readdirSync(path.join(this.root, 'vms'));
    } catch {
      return [];
    }
  }

  /** readRecordIn reads the vm.json of the folder vms/<dirName>. */
  readRecordIn(dirName: string): VmRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.root, 'vms', dirName, 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      return undefined;
    }
  }

  /** readRecord reads a task's vm.json. */
  readRecord(task: string): VmRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.vmDir(task), 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      return undefined;
    }
  }

  /** writeRecord replaces a task's vm.json (temp file + rename). */
  writeRecord(task: string, rec: VmRecord): void {
    const dir = this.vmDir(task);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tmp = path.join(dir, `vm.json.tmp-${process.pid}`);
    fs.writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n');
    fs.renameSync(tmp, path.join(dir, 'vm.json'));
  }

  /** updateRecord changes a task's vm.json in place; nothing when the task has none. */
  updateRecord(task: string, patch: (r: VmRecord) => void): void {
    const rec = this.readRecord(task);
    if (!rec) return;
    patch(rec);
    this.writeRecord(task, rec);
  }
}
