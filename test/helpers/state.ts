/** Test helpers: a StateWork over an in-memory backend holding given records. */
import { MemoryBackend } from '../../src/state/memory-backend.js';
import type { StateData } from '../../src/state/types.js';
import { StateWork } from '../../src/state/work.js';

/** workFrom commits the records of a version-1-shaped document to a MemoryBackend and returns a unit of work over it. */
export async function workFrom(data: Partial<StateData>): Promise<StateWork> {
  const b = new MemoryBackend();
  await b.lock();
  const w = new StateWork(b);
  for (const r of Object.values(data.agents ?? {})) w.agents.put(r);
  for (const r of Object.values(data.tasks ?? {})) w.tasks.put(r);
  for (const r of Object.values(data.plans ?? {})) w.plans.put(r);
  await w.flush();
  return new StateWork(b);
}
