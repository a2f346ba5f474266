/**
 * The snapshot file of the file backend (`state.json`): read strictly, written atomically (temp
 * file, fsync, rename, fsync of the folder, mode 0600). A corrupt file is refused and never
 * overwritten; one copy is kept per distinct bad content, not one more per failing command.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { StateError } from '../errors.js';

/** errMessage renders a file-system error as `CODE: message`. */
export function errMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}: ${e.message.replace(/^\w+: /, '')}` : String(e?.message ?? err);
}

/** keepCorruptCopy copies a bad file to `<file>.corrupt-<hash>` unless that copy exists; returns its path. */
export async function keepCorruptCopy(file: string): Promise<string | undefined> {
  try {
    const bytes = await fsp.readFile(file);
    const copy = `${file}.corrupt-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
    await fsp.writeFile(copy, bytes, { flag: 'wx', mode: 0o600 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    return copy;
  } catch {
    return undefined;
  }
}

/** corruptError is the refusal of a corrupt state file, naming it and the copy kept. */
export async function corruptError(file: string, why: string): Promise<StateError> {
  const copy = await keepCorruptCopy(file);
  return new StateError(`state file ${file} is corrupt: ${why}${copy ? `; a copy was kept at ${copy}` : ''}`, {
    code: 'E_STATE_CORRUPT',
    hint: 'factory will not overwrite it. Restore it from a backup, or move the state directory away to start from an empty state',
  });
}

/** writeFileAtomic replaces file with text: temp file in the same folder, fsync, rename, fsync of the folder. */
export async function writeFileAtomic(file: string, text: string, opts: { exclusive?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    await fh.writeFile(text, 'utf8');
    await fh.sync();
    await fh.close();
    fh = undefined;
    // exclusive: link fails when another process created the file first (two first opens race)
    if (opts.exclusive) {
      await fsp.link(tmp, file);
      await fsp.rm(tmp, { force: true });
    } else {
      await fsp.rename(tmp, file);
    }
    await syncDir(dir);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    if (opts.exclusive && (err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
    throw new StateError(`cannot write state file ${file}: ${errMessage(err)}`, {
      code: 'E_STATE_WRITE',
      hint: 'check that the state directory (--state) is writable and the disk is not full',
      cause: err,
    });
  }
}

/** syncDir fsyncs a folder so that a rename in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close().catch(() => undefined);
}
