/**
 * stateOf returns this process's handle on a state (one per location, opened once): a control host
 * serves every request from one handle, so that reads come from memory and writers take turns on
 * its lock. Each caller refreshes it (or locks it, which refreshes) before reading.
 */
import path from 'node:path';
import type { LockOptions, StateBackend } from '../state/backend.js';
import { StateWork } from '../state/work.js';
import { openStateDir, stateDirOf } from '../state/open.js';

const handles = new Map<string, Promise<StateBackend & { dir: string }>>();

/** stateOf opens (once) and refreshes the state at a location (a directory or file:// URL). */
export async function stateOf(location: string, opts: { follow?: boolean } = {}): Promise<StateBackend & { dir: string }> {
  const key = path.resolve(stateDirOf(location));
  let h = handles.get(key);
  if (!h) {
    h = openStateDir(key, opts);
    handles.set(key, h);
    h.catch(() => handles.delete(key));
    return h;
  }
  const state = await h;
  await state.refresh();
  return state;
}

/**
 * adoptState makes stateOf(dir) answer with an open backend (a control host on etcd: its local files
 * live in dir, its state in etcd), so the control operations, which locate the state by directory,
 * work on it unchanged.
 */
export function adoptState(dir: string, backend: StateBackend): StateBackend & { dir: string } {
  const state = Object.assign(backend, { dir: path.resolve(dir) });
  handles.set(path.resolve(dir), Promise.resolve(state));
  return state;
}

/** closeStates closes every handle this process opened (a host on shutdown, tests). */
export async function closeStates(): Promise<void> {
  const all = [...handles.values()];
  handles.clear();
  for (const h of all) await (await h.catch(() => undefined))?.close();
}

/**
 * withStateWork runs fn with the state locked and a unit of work over it, commits what fn wrote
 * (also when fn throws after writing: what was done on the agents is recorded), and unlocks.
 */
export async function withStateWork<T>(
  location: string,
  lock: LockOptions,
  by: string | undefined,
  fn: (work: StateWork, state: StateBackend & { dir: string }) => Promise<T>,
): Promise<T> {
  const state = await stateOf(location);
  await state.lock(lock);
  const work = new StateWork(state, by);
  try {
    const out = await fn(work, state);
    await work.flush();
    return out;
  } catch (err) {
    await work.flush().catch(() => undefined);
    throw err;
  } finally {
    await state.unlock();
  }
}
