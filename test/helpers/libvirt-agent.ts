/**
 * The setup the libvirt driver test files share: libvirtd acquired (a skip with the reason on a dev
 * machine, a failure under CI: see acquireLibvirtd), a work folder QEMU can read, built executors on
 * its agent folder over the local transport, the tiny test guest as an image source, the VM task
 * spec, and one stop() that ends what the file started.
 */
import path from 'node:path';
import type { TaskRunSpec } from '../../src/protocol/messages.js';
import { readVmImageSource, type VmImageSource } from '../../src/control/vm-images.js';
import { ExecutorClient, type ConnectOptions } from '../../src/transport/client.js';
import { LocalTransport } from '../../src/transport/local.js';
import { acquireLibvirtd, makeGuestImageSource, testWorkDir, type LibvirtAvailability } from '../harness/libvirtd.js';
import { makeSpec } from '../executors/helpers.js';

/** VmTaskOptions change a vmTaskSpec: memMiB sets the memory, the rest replaces fields of the spec. */
export type VmTaskOptions = Partial<Omit<TaskRunSpec, 'task'>> & { memMiB?: number };

/** vmTaskSpec is a libvirt task `plan/group/index`: 1 CPU, 128 MiB (memMiB), image `tiny`, no stop grace. */
export function vmTaskSpec(task: string, opts: VmTaskOptions = {}): TaskRunSpec {
  const { memMiB = 128, ...over } = opts;
  const resources = { cpus: 1, mem: memMiB * 1024 * 1024, disk: 0, gpus: 0, scalars: {}, ports: [] };
  return makeSpec(task, [], { driver: 'libvirt', specHash: 'vm1', resources, stopGraceMs: 0, image: 'tiny', ...over });
}

/** LibvirtTestAgent is one libvirt test file's daemon, work folder and local agent. */
export class LibvirtTestAgent {
  /** agentDir is the executors' workDir: <work>/agent. */
  readonly agentDir: string;

  constructor(
    /** lv says whether libvirtd answers (with its release) or why the tests skip. */
    readonly lv: LibvirtAvailability,
    private readonly work: { dir: string; cleanup: () => void },
  ) {
    this.agentDir = path.join(work.dir, 'agent');
  }

  /** dir is the work folder (under TEST_ROOT, readable by QEMU); stop() removes it. */
  get dir(): string {
    return this.work.dir;
  }

  /** skip is why the tests cannot run here, or undefined when libvirtd answers. */
  get skip(): string | undefined {
    return this.lv.ok ? undefined : this.lv.reason;
  }

  /** connect starts the built executor on the agent folder (handshake timeout 30 s) and speaks to it. */
  connect(opts: Omit<ConnectOptions, 'workDir'> = {}): Promise<ExecutorClient> {
    return ExecutorClient.connect(new LocalTransport('local'), { workDir: this.agentDir, timeoutMs: 30_000, ...opts });
  }

  /** guestImage is the tiny test guest as a `vm push` source, written under the work folder. */
  guestImage(): Promise<VmImageSource> {
    return readVmImageSource(makeGuestImageSource(path.join(this.work.dir, 'guest-src')));
  }

  /** stop stops these tasks at once on every client (what is not there is no error), closes them, removes the work folder and releases libvirtd. */
  async stop(clients: (ExecutorClient | undefined)[], tasks: string[]): Promise<void> {
    for (const c of clients) {
      if (!c) continue;
      for (const t of tasks) await c.stop(t, { graceMs: 0 }).catch(() => undefined);
      await c.close();
    }
    this.work.cleanup();
    if (this.lv.ok) await this.lv.release();
  }
}

/** libvirtTestAgent acquires libvirtd and makes the work folder (prefix) of one test file; await it at the file's top. */
export async function libvirtTestAgent(prefix: string): Promise<LibvirtTestAgent> {
  const lv = await acquireLibvirtd();
  return new LibvirtTestAgent(lv, testWorkDir(prefix));
}
