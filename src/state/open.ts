/**
 * openState opens the state named by `--state`: a directory or a `file://` URL (the file backend).
 * `etcd://` is the HA backend of a later release and is refused by name until then.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { StateError } from '../errors.js';
import type { StateBackend } from './backend.js';
import { FileBackend, type FileBackendOptions } from './file-backend.js';

/** stateDirOf returns the directory of a file state location (a path or file:// URL). */
export function stateDirOf(location: string): string {
  if (/^file:/i.test(location)) return fileURLToPath(location);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location);
  if (scheme) {
    throw new StateError(`state backend '${scheme[1]}' is not supported by this factory (${location})`, {
      code: 'E_STATE_BACKEND',
      hint: scheme[1]!.toLowerCase() === 'etcd' ? 'the etcd backend comes with high availability; use a directory for now' : 'pass a directory or a file:// URL with --state',
    });
  }
  return location.startsWith('~/') ? `${os.homedir()}${location.slice(1)}` : location;
}

/** openState opens the backend for a state location. */
export async function openState(location: string, opts: FileBackendOptions = {}): Promise<StateBackend & { dir: string }> {
  return FileBackend.open(stateDirOf(location), opts);
}
