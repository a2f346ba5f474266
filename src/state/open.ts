/**
 * openState opens the state named by `--state`: a directory or a `file://` URL (the file backend),
 * or `etcd://host:port[,host:port…]/prefix` (the etcd backend). The commands and the control host
 * still need a state directory (its socket, tokens and TLS files live there): they open it with
 * openStateDir, which refuses etcd:// by name until the control host runs on etcd.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { StateError } from '../errors.js';
import type { StateBackend } from './backend.js';
import { isEtcdLocation } from './etcd-client.js';
import type { EtcdBackendOptions } from './etcd-backend.js';
import { FileBackend, type FileBackendOptions } from './file-backend.js';

/** stateDirOf returns the directory of a file state location (a path or file:// URL). */
export function stateDirOf(location: string): string {
  if (/^file:/i.test(location)) return fileURLToPath(location);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location);
  if (scheme) {
    throw new StateError(`state backend '${scheme[1]}' is not supported here (${location})`, {
      code: 'E_STATE_BACKEND',
      hint:
        scheme[1]!.toLowerCase() === 'etcd'
          ? 'commands and the control host need a state directory until the control host runs on etcd; `factory state migrate` copies a state between a directory and etcd'
          : 'pass a directory or a file:// URL with --state',
    });
  }
  return location.startsWith('~/') ? `${os.homedir()}${location.slice(1)}` : location;
}

/** openStateDir opens the file state of a directory location (what commands and the control host use). */
export async function openStateDir(location: string, opts: FileBackendOptions = {}): Promise<FileBackend> {
  return FileBackend.open(stateDirOf(location), opts);
}

/** openState opens the backend for any state location: etcd:// on etcd, else a directory. */
export async function openState(location: string, opts: FileBackendOptions & EtcdBackendOptions = {}): Promise<StateBackend> {
  if (isEtcdLocation(location)) {
    const { EtcdBackend } = await import('./etcd-backend.js');
    return EtcdBackend.open(location, opts);
  }
  return openStateDir(location, opts);
}
