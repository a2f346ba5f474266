/**
 * The shared volumes of a store: `volumes/<name>.raw`, a sparse raw file created once and attached
 * `<shareable/>` to every VM that lists it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';

/** DEFAULT_VOLUME_BYTES is the size of a new shared volume (a sparse raw file); FACTORY_VM_VOLUME_SIZE overrides. */
export const DEFAULT_VOLUME_BYTES = Number(process.env.FACTORY_VM_VOLUME_SIZE ?? 1024 ** 3);

/** volumePath is the file of a shared volume in the store at root. */
export function volumePath(root: string, name: string): string {
  return path.join(root, 'volumes', `${name}.raw`);
}

/** ensureVolumes creates the named volumes that do not exist yet and returns their files, in order. */
export async function ensureVolumes(root: string, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const v of names) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(v)) throw new FactoryError(`bad volume name ${JSON.stringify(v)}`, { code: 'E_BAD_REQUEST' });
    const file = volumePath(root, v);
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
