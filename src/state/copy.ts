/**
 * copyState copies a state from one backend to another (a directory ↔ etcd://), keeping its id, its
 * records, its events and its revision: the source is locked for the whole copy (nobody writes it
 * meanwhile), the destination must be empty, and the copy is read back and compared before it is
 * reported done.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { StateError } from '../errors.js';
import { TABLES, type StateBackend, type TableName } from './backend.js';
import { isEtcdLocation } from './etcd-client.js';
import { FileBackend, STATE_FILE } from './file-backend.js';
import { stateDirOf } from './open.js';
import type { SnapshotDoc } from './tables.js';

/** StateCopyResult says what was copied. */
export interface StateCopyResult {
  from: string;
  to: string;
  id: string;
  rev: number;
  records: Record<TableName, number>;
  events: number;
}

type Snapshotting = StateBackend & { snapshot(): SnapshotDoc };

async function openSource(location: string): Promise<Snapshotting> {
  if (isEtcdLocation(location)) {
    const { EtcdBackend } = await import('./etcd-backend.js');
    return EtcdBackend.open(location, { mustExist: true });
  }
  const dir = path.resolve(stateDirOf(location));
  if (!existsSync(path.join(dir, STATE_FILE))) throw new StateError(`there is no state in ${dir} (no ${STATE_FILE})`, { code: 'E_STATE_MISSING', hint: 'check FROM: a state directory or etcd://HOST:PORT/PREFIX' });
  return FileBackend.open(dir);
}

async function openCopy(location: string): Promise<Snapshotting> {
  if (isEtcdLocation(location)) {
    const { EtcdBackend } = await import('./etcd-backend.js');
    return EtcdBackend.open(location, { mustExist: true });
  }
  return FileBackend.open(stateDirOf(location));
}

async function create(location: string, doc: SnapshotDoc): Promise<void> {
  if (isEtcdLocation(location)) {
    const { EtcdBackend } = await import('./etcd-backend.js');
    return EtcdBackend.create(location, doc);
  }
  return FileBackend.create(stateDirOf(location), doc);
}

function summary(doc: SnapshotDoc): { records: Record<TableName, number>; events: number } {
  const records = {} as Record<TableName, number>;
  for (const t of TABLES) records[t] = Object.keys(doc[t] ?? {}).length;
  return { records, events: doc.events.length };
}

/** copyState copies the state at from into an empty to; throws E_STATE_LOCKED while a writer holds from. */
export async function copyState(from: string, to: string): Promise<StateCopyResult> {
  const same = isEtcdLocation(from) === isEtcdLocation(to) && (isEtcdLocation(from) ? from === to : path.resolve(stateDirOf(from)) === path.resolve(stateDirOf(to)));
  if (same) throw new StateError(`FROM and TO are the same state (${from})`, { code: 'E_USAGE' });
  const source = await openSource(from);
  try {
    try {
      await source.lock({ timeoutMs: 0, purpose: 'state migrate' });
    } catch (err) {
      if ((err as StateError).code !== 'E_STATE_LOCKED') throw err;
      throw new StateError(`${(err as StateError).message.replace(/; gave up after .*$/, '')}: a state is migrated only while nothing writes it`, {
        code: 'E_STATE_LOCKED',
        hint: 'stop the control host and wait for running commands, then migrate',
      });
    }
    const doc = source.snapshot();
    await create(to, doc);
    const copy = await openCopy(to);
    try {
      const a = summary(doc);
      const b = summary(copy.snapshot());
      const same = copy.id === doc.id && copy.view().rev === doc.rev && b.events === a.events && TABLES.every((t) => a.records[t] === b.records[t]);
      if (!same) {
        throw new StateError(`the copy at ${to} differs from ${from} (id ${copy.id}, revision ${copy.view().rev}, ${JSON.stringify(b)} against id ${doc.id}, revision ${doc.rev}, ${JSON.stringify(a)})`, {
          code: 'E_STATE_COPY',
          hint: 'the source is unchanged; delete the copy and migrate again',
        });
      }
      return { from: source.location, to: copy.location, id: doc.id, rev: doc.rev, ...a };
    } finally {
      await copy.close();
    }
  } finally {
    await source.close();
  }
}
