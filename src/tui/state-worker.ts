/**
 * The state worker: reads and parses the state file and computes the dashboard's compact model
 * (model-core.ts) off the UI thread, then posts it back (typed arrays transferred) and ends. It
 * parses record by record from a window of the file (state-reader.ts), so it holds the columns
 * being built, not the text nor a parsed document. One worker per read: its heap is given back to the system when it
 * exits, so the UI process never keeps the space of old parses.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { coreTransferList, type DeclaredAgent } from './model-core.js';
import { coreFromStateFile } from './state-reader.js';

/** StateWorkerInput is what the worker is started with. */
export interface StateWorkerInput {
  kind: 'factory-state-worker';
  file: string;
  declared: DeclaredAgent[];
}

if (parentPort && (workerData as StateWorkerInput | undefined)?.kind === 'factory-state-worker') {
  const { file, declared } = workerData as StateWorkerInput;
  try {
    // on Linux this lowers only this thread: parsing yields the CPU to the UI thread's frames
    setPriority(10);
  } catch {
    // not permitted or not supported: parse at normal priority
  }
  try {
    // record by record, reading the file in chunks; anything unusual is parsed whole, as before
    const core = coreFromStateFile(file, declared);
    parentPort.postMessage({ ok: true, core }, coreTransferList(core));
  } catch (err) {
    parentPort.postMessage({ ok: false, error: (err as Error)?.message ?? String(err) });
  }
}
