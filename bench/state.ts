/**
 * bench/state.ts (`npm run bench:state`, also part of `npm run bench:api`): what one task's change
 * costs in a state of 100k tasks, with the file backend (journal + snapshot) against the version 1
 * way (the whole document rewritten atomically), side by side in one run.
 *
 *   journal commit      StateWork put of one task + an event, flush: one fsync'd journal line
 *   whole rewrite (v1)  JSON.stringify of the whole document + temp file + fsync + rename
 *
 * BENCH_TASKS sets the state's size (default 100,000), BENCH_RUNS the changes timed (default 30).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, promises as fsp, constants as fsc } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileBackend } from '../src/state/file-backend.js';
import { StateWork } from '../src/state/work.js';
import type { TaskRecord } from '../src/state/types.js';

const TASKS = Number(process.env.BENCH_TASKS) || 100_000;
const RUNS = Number(process.env.BENCH_RUNS) || 30;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function task(i: number, state: TaskRecord['state'] = 'running'): TaskRecord {
  return {
    task: `plan${i % 100}/g/${i}`, plan: `plan${i % 100}`, group: 'g', project: `p${i % 4}`, agent: `h${i % 1000}`, driver: 'process',
    specHash: 'abcdef0123456789', state, pid: 10_000 + i, limits: 'cgroup-v2', startedAt: new Date().toISOString(),
    resources: { cpus: 0.5, mem: 64 << 20, disk: 0, gpus: 0, scalars: {}, ports: [] }, updatedAt: new Date().toISOString(),
  };
}

async function rewriteWhole(file: string, doc: unknown): Promise<number> {
  const body = JSON.stringify(doc, null, 1) + '\n';
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  await fh.writeFile(body, 'utf8');
  await fh.sync();
  await fh.close();
  await fsp.rename(tmp, file);
  return Buffer.byteLength(body);
}

/** benchState measures both ways and returns the figures (also printed). */
export async function benchState(): Promise<{ journal: { ms: number; bytes: number }; whole: { ms: number; bytes: number } }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'factory-bench-state-'));
  try {
    const b = await FileBackend.open(dir);
    await b.lock({ purpose: 'bench' });
    const w = new StateWork(b, 'bench');
    for (let i = 0; i < TASKS; i++) w.tasks.put(task(i));
    await w.flush();
    await b.compact(); // start from a snapshot holding the 100k tasks and an empty journal
    const v1 = { version: 1, agents: {}, tasks: Object.fromEntries(b.view().list('tasks').map((t) => [t.task, t])), plans: {}, events: [] as unknown[] };
    const journal: number[] = [];
    const whole: number[] = [];
    const bytesJ: number[] = [];
    const bytesW: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const i = (r * 7919) % TASKS;
      const rec = task(i, r % 2 ? 'running' : 'exited');
      // alternate which goes first, so drift hits both alike
      const runJournal = async () => {
        const before = b.stats().bytesWritten;
        const t0 = performance.now();
        w.tasks.put(rec);
        w.event({ kind: `task-${rec.state}`, task: rec.task, message: `${rec.task} ${rec.state}` });
        await w.flush();
        journal.push(performance.now() - t0);
        bytesJ.push(b.stats().bytesWritten - before);
      };
      const runWhole = async () => {
        const t0 = performance.now();
        (v1.tasks as Record<string, TaskRecord>)[rec.task] = rec;
        bytesW.push(await rewriteWhole(path.join(dir, 'v1.json'), v1));
        whole.push(performance.now() - t0);
      };
      if (r % 2) {
        await runJournal();
        await runWhole();
      } else {
        await runWhole();
        await runJournal();
      }
    }
    await b.unlock();
    const out = { journal: { ms: median(journal), bytes: median(bytesJ) }, whole: { ms: median(whole), bytes: median(bytesW) } };
    console.log(`state: one task's change in a state of ${TASKS.toLocaleString('en')} tasks, medians of ${RUNS} runs`);
    console.log(`  journal commit (file backend): ${out.journal.bytes} B written, ${out.journal.ms.toFixed(2)} ms`);
    console.log(`  whole rewrite (version 1):     ${(out.whole.bytes / 1e6).toFixed(1)} MB written, ${out.whole.ms.toFixed(0)} ms`);
    console.log(`  ratio: ${(out.whole.bytes / out.journal.bytes).toFixed(0)}× fewer bytes, ${(out.whole.ms / out.journal.ms).toFixed(0)}× faster`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchState();
