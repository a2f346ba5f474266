/**
 * `factory vm push SOURCE --name NAME`: copy a VM base image to the agents' image stores,
 * content-addressed and verified by checksum, skipped where present.
 *
 * SOURCE is a folder holding `disk.qcow2` and optionally `kernel`, `initrd` and `cmdline` (a text file:
 * the kernel command line for direct kernel boot), or a single `.qcow2` file. Files go over the executor
 * protocol in base64 chunks, so a push works over every transport; the agent checks size and sha256 of
 * every file and the image id before it commits the image.
 */
import fs from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import { FactoryError } from '../errors.js';
import { sha256File, validateVmImageManifest, vmImageIdOf } from '../executors/drivers/libvirt/image-store.js';
import { isVmDriver } from '../protocol/drivers.js';
import { VM_IMAGE_FORMAT, type VmImageFile, type VmImageManifest } from '../protocol/vm.js';
import { resolveInventory } from '../spec/index.js';
import { stateOf } from './state-handle.js';
import type { ExecutorClient } from '../transport/client.js';
import { AgentPool, inventoryAgents } from './agents.js';

/** VM_IMAGE_CHUNK_BYTES is the raw size of one upload chunk (base64 ~5.3 MiB, under the 16 MiB line limit). */
export const VM_IMAGE_CHUNK_BYTES = 4 * 1024 * 1024;

/** VmImageSource is a local image ready to push: its manifest, id and files. */
export interface VmImageSource {
  id: string;
  manifest: VmImageManifest;
  files: Partial<Record<VmImageFile, string>>;
  bytes: number;
}

/** readVmImageSource hashes a source folder (or a single .qcow2 file) into a manifest and its id. */
export async function readVmImageSource(source: string): Promise<VmImageSource> {
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch {
    throw new FactoryError(`image source ${source} does not exist`, { code: 'E_BAD_IMAGE' });
  }
  const files: Partial<Record<VmImageFile, string>> = {};
  let cmdline: string | undefined;
  if (st.isFile()) files['disk.qcow2'] = path.resolve(source);
  else {
    for (const f of ['disk.qcow2', 'kernel', 'initrd'] as const) {
      const p = path.join(source, f);
      if (fs.existsSync(p)) files[f] = path.resolve(p);
    }
    const c = path.join(source, 'cmdline');
    if (fs.existsSync(c)) cmdline = fs.readFileSync(c, 'utf8').trim();
    if (!files['disk.qcow2']) throw new FactoryError(`image source ${source} has no disk.qcow2`, { code: 'E_BAD_IMAGE', hint: 'a VM image folder holds disk.qcow2 and optionally kernel, initrd and cmdline' });
  }
  const manifest: VmImageManifest = { format: VM_IMAGE_FORMAT, files: {} };
  if (cmdline) manifest.cmdline = cmdline;
  let bytes = 0;
  for (const [f, p] of Object.entries(files)) {
    const h = await sha256File(p);
    manifest.files[f as VmImageFile] = h;
    bytes += h.size;
  }
  validateVmImageManifest(manifest);
  return { id: vmImageIdOf(manifest), manifest, files, bytes };
}

/** VmImagePushAgent is what happened on one agent: pushed, present (skipped) or failed. */
export interface VmImagePushAgent {
  agent: string;
  action: 'pushed' | 'present' | 'failed';
  bytes?: number;
  ms?: number;
  error?: string;
}

/** VmImagePushResult is the `vm push --json` document. */
export interface VmImagePushResult {
  name: string;
  id: string;
  bytes: number;
  agents: VmImagePushAgent[];
  ok: boolean;
}

/** uploadVmImage sends an image to one executor unless it has it, then names it; returns whether it sent anything. */
export async function uploadVmImage(client: ExecutorClient, src: VmImageSource, name: string): Promise<{ sent: boolean; bytes: number }> {
  let bytes = 0;
  const present = await client.vmImageHas(src.id);
  if (!present) {
    for (const [file, p] of Object.entries(src.files)) {
      const fd = fs.openSync(p, 'r');
      try {
        const buf = Buffer.alloc(VM_IMAGE_CHUNK_BYTES);
        let offset = 0;
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, offset);
          if (n === 0 && offset > 0) break;
          await client.vmImagePut(src.id, file, offset, buf.subarray(0, n).toString('base64'));
          offset += n;
          bytes += n;
          if (n === 0) break;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  await client.vmImageCommit(src.id, name, src.manifest);
  return { sent: !present, bytes };
}

/** VmImagePushOptions select the source, the name, the agents and where state and inventory are. */
export interface VmImagePushOptions {
  source: string;
  name: string;
  stateDir: string;
  inventoryPath?: string;
  agents?: string[];
  progress?: (line: string) => void;
}

/** pushVmImage copies a VM base image to every (or the named) agent's image store. */
export async function pushVmImage(opts: VmImagePushOptions): Promise<VmImagePushResult> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(opts.name)) throw new FactoryError(`bad image name ${JSON.stringify(opts.name)}: expected [a-z0-9][a-z0-9._-]*`, { code: 'E_BAD_IMAGE' });
  const src = await readVmImageSource(opts.source);
  const inventory = await resolveInventory(opts.inventoryPath);
  const specs = inventoryAgents(inventory, opts.agents);
  if (opts.agents) {
    const unknown = opts.agents.filter((a) => !inventory.agents.some((s) => s.name === a));
    if (unknown.length) throw new FactoryError(`unknown agent${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, { code: 'E_AGENT_UNKNOWN' });
  }
  const state = await stateOf(opts.stateDir);
  opts.progress?.(`image ${opts.name}: ${src.id.slice(0, 12)}, ${src.bytes} bytes; connecting to ${specs.length} agent${specs.length === 1 ? '' : 's'}`);
  const pool = await AgentPool.connect(specs, { stateDir: state.dir, stateId: state.id, settings: inventory.settings });
  const agents: VmImagePushAgent[] = [];
  try {
    for (const [name, f] of pool.failed) agents.push({ agent: name, action: 'failed', error: `unreachable: ${f.error}` });
    const limit = pLimit(4);
    await Promise.all(
      [...pool.connected.values()].map((c) =>
        limit(async () => {
          const t0 = Date.now();
          if (!c.registration.drivers.some(isVmDriver)) {
            agents.push({ agent: c.spec.name, action: 'failed', error: 'libvirt is not available on this agent' });
            return;
          }
          try {
            const r = await uploadVmImage(c.client, src, opts.name);
            const a: VmImagePushAgent = { agent: c.spec.name, action: r.sent ? 'pushed' : 'present', bytes: r.bytes, ms: Date.now() - t0 };
            agents.push(a);
            opts.progress?.(`agent ${a.agent}: ${r.sent ? `pushed ${r.bytes} bytes in ${a.ms} ms` : 'already present (skipped)'}`);
          } catch (err) {
            agents.push({ agent: c.spec.name, action: 'failed', error: (err as Error).message });
            opts.progress?.(`agent ${c.spec.name}: failed: ${(err as Error).message}`);
          }
        }),
      ),
    );
  } finally {
    await pool.close();
  }
  agents.sort((a, b) => (a.agent < b.agent ? -1 : 1));
  return { name: opts.name, id: src.id, bytes: src.bytes, agents, ok: agents.every((a) => a.action !== 'failed') };
}
