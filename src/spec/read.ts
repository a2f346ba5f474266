/**
 * Reading plan and inventory files as text, safely (size, binary, UTF-8), and turning folders into
 * their plan files. No YAML and no zod here: the CLI's fast path (src/cli/fast-path.ts), which sends
 * the texts to a control host, bundles this module with Node's own modules only.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SpecError, type SpecIssue } from '../errors.js';

/** MAX_SPEC_FILE_BYTES is the largest plan or inventory file read (4 MiB). */
export const MAX_SPEC_FILE_BYTES = 4 * 1024 * 1024;

/** fileIssue builds an issue about a whole file (position 1:1). */
export function fileIssue(file: string, message: string): SpecIssue {
  return { file, line: 1, col: 1, path: '', message };
}

/** readSpecFile reads a plan or inventory file as UTF-8 text, refusing big and binary files. */
export async function readSpecFile(path: string, what: 'plan' | 'inventory'): Promise<string> {
  let buf: Buffer;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new SpecError([fileIssue(path, `is a folder, not a ${what} file`)]);
    if (st.size > MAX_SPEC_FILE_BYTES) {
      throw new SpecError([fileIssue(path, `file is larger than 4 MiB (${st.size} bytes); refusing to read it as a ${what}`)]);
    }
    buf = await readFile(path);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new SpecError([fileIssue(path, `cannot read ${what}: ${why}`)]);
  }
  if (buf.length > MAX_SPEC_FILE_BYTES) throw new SpecError([fileIssue(path, 'file is larger than 4 MiB; refusing to read it')]);
  const head = buf.subarray(0, 8192);
  if (head.includes(0)) throw new SpecError([fileIssue(path, `not a text file (NUL byte); expected a YAML ${what}`)]);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf).replace(/^\uFEFF/, '');
  } catch {
    throw new SpecError([fileIssue(path, `not a text file (invalid UTF-8); expected a YAML ${what}`)]);
  }
}

/** expandPlanPaths turns files and folders into plan files: a folder means its *.yaml and *.yml files, sorted. */
export async function expandPlanPaths(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch {
      isDir = false; // readSpecFile reports the missing file
    }
    if (!isDir) {
      files.push(p);
      continue;
    }
    const entries = (await readdir(p, { withFileTypes: true }))
      .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
      .map((e) => e.name)
      .sort();
    if (entries.length === 0) throw new SpecError([fileIssue(p, 'folder holds no *.yaml or *.yml plan files')]);
    files.push(...entries.map((e) => join(p, e)));
  }
  return files;
}
