/**
 * The VM image store of an agent: content-addressed base images, verified by checksum.
 *
 *   <store>/images/<id>/manifest.json     VmImageManifest (format, files with sha256 + size, cmdline, parent)
 *   <store>/images/<id>/disk.qcow2         the base disk (read-only; VMs get qcow2 overlays on top)
 *   <store>/images/<id>/kernel, initrd     optional: direct kernel boot
 *   <store>/images/names/<name>            the id a name points at (a tag; `vm push --name`, `vm image`)
 *   <store>/images/incoming/<id>/          an upload in progress; committed by rename after verification
 *
 * An image's id is the sha256 of its canonical identity (each file's sha256, and the cmdline), so
 * the same content pushed twice is stored once and a second push is skipped.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../../errors.js';
import { VM_IMAGE_FILES, VM_IMAGE_FORMAT, type VmImageFile, type VmImageInfo, type VmImageManifest } from '../../../protocol/vm.js';

const ID_RE = /^[0-9a-f]{64}$/;
const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

/** vmImageIdOf computes an image's content address from its manifest: sha256 over sorted file checksums and the cmdline. */
export function vmImageIdOf(m: Pick<VmImageManifest, 'files' | 'cmdline'>): string {
  const files = Object.entries(m.files)
    .filter((e): e is [string, { sha256: string; size: number }] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, f]) => [name, f.sha256, f.size]);
  return createHash('sha256').update(JSON.stringify({ format: VM_IMAGE_FORMAT, files, cmdline: m.cmdline ?? '' })).digest('hex');
}

/** sha256File hashes a file by streaming it. */
export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** isVmImageFile tells whether a name is one of the files an image may hold. */
export function isVmImageFile(name: string): name is VmImageFile {
  return (VM_IMAGE_FILES as readonly string[]).includes(name);
}

/** validateVmImageManifest checks a manifest's shape; it throws E_BAD_IMAGE with what is wrong. */
export function validateVmImageManifest(m: unknown): VmImageManifest {
  const bad = (why: string) => new FactoryError(`bad image manifest: ${why}`, { code: 'E_BAD_IMAGE' });
  if (!m || typeof m !== 'object') throw bad('not an object');
  const man = m as VmImageManifest;
  if (man.format !== VM_IMAGE_FORMAT) throw bad(`format must be ${VM_IMAGE_FORMAT}`);
  if (!man.files || typeof man.files !== 'object') throw bad('no files');
  for (const [name, f] of Object.entries(man.files)) {
    if (!isVmImageFile(name)) throw bad(`unexpected file ${JSON.stringify(name)} (allowed: ${VM_IMAGE_FILES.join(', ')})`);
    if (!f || !/^[0-9a-f]{64}$/.test(f.sha256) || !Number.isSafeInteger(f.size) || f.size < 0) throw bad(`file ${name}: bad sha256 or size`);
  }
  if (!man.files['disk.qcow2']) throw bad('disk.qcow2 is required');
  if (man.files.initrd && !man.files.kernel) throw bad('initrd needs kernel');
  if (man.cmdline !== undefined && (typeof man.cmdline !== 'string' || man.cmdline.length > 4096)) throw bad('cmdline must be a string');
  return man;
}

/** ResolvedVmImage is an image found in the store: its id, folder and manifest. */
export interface ResolvedVmImage {
  id: string;
  dir: string;
  manifest: VmImageManifest;
}

/** VmImageStore is one agent's image store (see the file comment for the layout). */
export class VmImageStore {
  /** dir is `<store>/images`. */
  readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'images');
  }

  private checkId(id: string): void {
    if (typeof id !== 'string' || !ID_RE.test(id)) throw new FactoryError(`bad image id ${JSON.stringify(id)}: expected 64 hex digits`, { code: 'E_BAD_IMAGE' });
  }

  private checkName(name: string): void {
    if (typeof name !== 'string' || !NAME_RE.test(name) || name.length > 100) {
      throw new FactoryError(`bad image name ${JSON.stringify(name)}: expected [a-z0-9][a-z0-9._-]*`, { code: 'E_BAD_IMAGE' });
    }
  }

  /** has tells whether the image id is committed in the store. */
  has(id: string): boolean {
    this.checkId(id);
    return fs.existsSync(path.join(this.dir, id, 'manifest.json'));
  }

  /** resolve finds an image by name or id; undefined when the store has neither. */
  resolve(ref: string): ResolvedVmImage | undefined {
    let id = ref;
    if (!ID_RE.test(ref)) {
      if (!NAME_RE.test(ref)) return undefined;
      try {
        id = fs.readFileSync(path.join(this.dir, 'names', ref), 'utf8').trim();
      } catch {
        return undefined;
      }
      if (!ID_RE.test(id)) return undefined;
    }
    const dir = path.join(this.dir, id);
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as VmImageManifest;
      return { id, dir, manifest };
    } catch {
      return undefined;
    }
  }

  /** list returns every committed image with the names pointing at it. */
  list(): VmImageInfo[] {
    const names = new Map<string, string[]>();
    try {
      for (const n of fs.readdirSync(path.join(this.dir, 'names'))) {
        const id = fs.readFileSync(path.join(this.dir, 'names', n), 'utf8').trim();
        names.set(id, [...(names.get(id) ?? []), n]);
      }
    } catch {
      /* no names yet */
    }
    const out: VmImageInfo[] = [];
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(this.dir);
    } catch {
      return out;
    }
    for (const id of entries.filter((e) => ID_RE.test(e)).sort()) {
      const r = this.resolve(id);
      if (r) out.push({ id, names: (names.get(id) ?? []).sort(), manifest: r.manifest });
    }
    return out;
  }

  /** put writes one chunk of one file of an incoming image at offset (chunks arrive in order; offset 0 truncates). */
  put(id: string, file: string, offset: number, data: Buffer): { received: number } {
    this.checkId(id);
    if (!isVmImageFile(file)) throw new FactoryError(`image file ${JSON.stringify(file)} is not one of ${VM_IMAGE_FILES.join(', ')}`, { code: 'E_BAD_IMAGE' });
    const dir = path.join(this.dir, 'incoming', id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const target = path.join(dir, file);
    const have = offset === 0 ? 0 : fs.existsSync(target) ? fs.statSync(target).size : 0;
    if (have !== offset) throw new FactoryError(`image ${id.slice(0, 12)} ${file}: chunk at ${offset} but ${have} bytes staged`, { code: 'E_IMAGE_CHUNK' });
    if (offset === 0) fs.writeFileSync(target, data, { mode: 0o644 });
    else fs.appendFileSync(target, data);
    return { received: offset + data.length };
  }

  /**
   * commit verifies the staged files of `id` against the manifest (size and sha256, and that the
   * manifest hashes to id), moves them into place read-only, and points `name` at it. When the image
   * is already committed only the name is (re)pointed.
   */
  async commit(id: string, name: string, manifestIn: VmImageManifest): Promise<ResolvedVmImage> {
    this.checkId(id);
    this.checkName(name);
    const manifest = validateVmImageManifest(manifestIn);
    if (vmImageIdOf(manifest) !== id) throw new FactoryError(`image id ${id.slice(0, 12)} does not match its manifest`, { code: 'E_BAD_IMAGE' });
    const final = path.join(this.dir, id);
    if (!this.has(id)) {
      const incoming = path.join(this.dir, 'incoming', id);
      for (const [file, want] of Object.entries(manifest.files)) {
        if (!want) continue;
        const p = path.join(incoming, file);
        if (!fs.existsSync(p)) throw new FactoryError(`image ${id.slice(0, 12)}: ${file} was not uploaded`, { code: 'E_BAD_IMAGE' });
        const got = await sha256File(p);
        if (got.size !== want.size || got.sha256 !== want.sha256) {
          fs.rmSync(p, { force: true });
          throw new FactoryError(`image ${id.slice(0, 12)}: ${file} checksum mismatch (got ${got.sha256.slice(0, 12)}, ${got.size} bytes; want ${want.sha256.slice(0, 12)}, ${want.size} bytes)`, {
            code: 'E_IMAGE_CHECKSUM',
          });
        }
        fs.chmodSync(p, 0o444);
      }
      fs.writeFileSync(path.join(incoming, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o444 });
      fs.chmodSync(incoming, 0o755);
      try {
        fs.renameSync(incoming, final);
      } catch (err) {
        // a concurrent commit of the same content won: fine, the content is identical
        if (!this.has(id)) throw err;
        fs.rmSync(incoming, { recursive: true, force: true });
      }
    }
    const names = path.join(this.dir, 'names');
    fs.mkdirSync(names, { recursive: true, mode: 0o755 });
    const tmp = path.join(names, `.${name}.${process.pid}`);
    fs.writeFileSync(tmp, `${id}\n`);
    fs.renameSync(tmp, path.join(names, name));
    return { id, dir: final, manifest };
  }

  /** abort drops a staged upload. */
  abort(id: string): void {
    this.checkId(id);
    fs.rmSync(path.join(this.dir, 'incoming', id), { recursive: true, force: true });
  }

  /** stagingDir is the incoming folder of id (for images made on the agent itself). */
  stagingDir(id: string): string {
    this.checkId(id);
    return path.join(this.dir, 'incoming', id);
  }
}

/** VmImageImport is a set of local files to import into a store as a new image. */
export interface VmImageImport {
  /** files maps image file names to paths on this host; files under the store are moved, others linked or copied. */
  files: Partial<Record<VmImageFile, string>>;
  cmdline?: string;
  parent?: string;
}

/**
 * importVmImage hashes local files, stages them as an image (a hard link where possible, else a
 * copy; `move` names files to rename instead) and commits it under name.
 */
export async function importVmImage(store: VmImageStore, name: string, imp: VmImageImport, move: VmImageFile[] = []): Promise<ResolvedVmImage> {
  const manifest: VmImageManifest = { format: VM_IMAGE_FORMAT, files: {}, createdAt: new Date().toISOString() };
  if (imp.cmdline !== undefined) manifest.cmdline = imp.cmdline;
  if (imp.parent !== undefined) manifest.parent = imp.parent;
  for (const [file, src] of Object.entries(imp.files)) if (src) manifest.files[file as VmImageFile] = await sha256File(src);
  validateVmImageManifest(manifest);
  const id = vmImageIdOf(manifest);
  if (!store.has(id)) {
    const staging = store.stagingDir(id);
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true, mode: 0o755 });
    for (const [file, src] of Object.entries(imp.files)) {
      if (!src) continue;
      const dst = path.join(staging, file);
      if (move.includes(file as VmImageFile)) fs.renameSync(src, dst);
      else {
        try {
          fs.linkSync(src, dst);
        } catch {
          fs.copyFileSync(src, dst);
        }
      }
    }
  } else {
    for (const file of move) if (imp.files[file]) fs.rmSync(imp.files[file]!, { force: true });
  }
  return store.commit(id, name, manifest);
}
