/**
 * `factory vm image`: a shut off VM's disk becomes a new base image. `qemu-img convert -O qcow2`
 * flattens the overlay into one file, which is imported with the parent image's kernel, initrd and
 * cmdline; vm.json says `imaging` meanwhile (the VM reports power 'imaging').
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import type { RunTool } from './host-tool.js';
import { importVmImage, type ResolvedVmImage } from './image-store.js';
import { DOMAIN_STATE, powerOf } from './power.js';
import { shortHash, type VmStore } from './store.js';

/** imagingLive tells whether the executor that started an image is still at it (a crashed one left a stale mark). */
export function imagingLive(imaging: { pid?: number }): boolean {
  if (!imaging.pid) return true;
  try {
    process.kill(imaging.pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** makeImage turns the disk of a task's VM (in domain state `state`: it must be shut off) into the image `name`. */
export async function makeImage(store: VmStore, tool: RunTool, task: string, state: number, name: string | undefined): Promise<{ id: string; name: string }> {
  if (!name) throw new FactoryError('vm image needs the new image name', { code: 'E_BAD_REQUEST' });
  if (state !== DOMAIN_STATE.SHUTOFF) {
    // hints do not cross the protocol: the advice is part of the message
    throw new FactoryError(`VM ${task} is ${powerOf(state)}: only a shut off VM can be imaged (shut it down first: factory vm stop ${task})`, { code: 'E_VM_STATE' });
  }
  const rec = store.readRecord(task);
  const parent = rec?.image ? store.images.resolve(rec.image) : undefined;
  const since = new Date().toISOString();
  store.updateRecord(task, (r) => (r.imaging = { name, since, pid: process.pid }));
  const out = path.join(store.images.dir, 'incoming', `convert-${shortHash(task + since, 12)}.qcow2`);
  try {
    fs.mkdirSync(path.dirname(out), { recursive: true, mode: 0o755 });
    await tool('qemu-img', ['convert', '-q', '-O', 'qcow2', path.join(store.vmDir(task), 'disk.qcow2'), out], 60 * 60_000);
    const made: ResolvedVmImage = await importVmImage(
      store.images,
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
    store.updateRecord(task, (r) => delete r.imaging);
  }
}
