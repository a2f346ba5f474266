/**
 * bench/restart-backoff.ts (`npm run bench:backoff`): what a crash-looping task costs a control host
 * (issue 14). A real `factory control serve` supervises a group whose process exits 1 as soon as it
 * starts (`restart: always`); after BENCH_SECONDS (default 60) it prints how many attempts the process
 * made (each writes its start time to a file) and how many events the state gained, per minute.
 *
 * BENCH_BIN runs another build (e.g. a worktree of the commit before the backoff:
 * `git worktree add /tmp/before 1f885c5 && cd /tmp/before && npm ci` and
 * `BENCH_BIN=/tmp/before/bin/factory BENCH_BACKOFF= npm run bench:backoff`); BENCH_INTERVALS lists
 * the `--reconcile-interval`s to run (default `2,1`); BENCH_BACKOFF is the group's restartBackoff (a
 * YAML flow mapping; empty: the key is left out, i.e. the defaults, or no backoff on an old build).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN as OWN_BIN } from '../test/helpers/cli.js';

const BIN = process.env.BENCH_BIN || OWN_BIN;
const SECONDS = Number(process.env.BENCH_SECONDS) || 60;
const INTERVALS = (process.env.BENCH_INTERVALS ?? '2,1').split(',').map((s) => s.trim()).filter(Boolean);
const BACKOFF = process.env.BENCH_BACKOFF ?? '';

const env = { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '' };

async function run(interval: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-bench-backoff-'));
  const state = path.join(dir, 'state');
  const plan = path.join(dir, 'crashy.yaml');
  const attempts = path.join(dir, 'attempts');
  fs.writeFileSync(
    plan,
    `name: crashy\nprocesses:\n  - name: crash\n    restart: always\n${BACKOFF ? `    restartBackoff: ${BACKOFF}\n` : ''}` +
      `    command: ["sh", "-c", "date +%s%3N >> ${attempts}; exit 1"]\n    resources: {cpus: 0.1, mem: 16Mi}\n`,
  );
  const host = spawn(BIN, ['control', 'serve', '--state', state, '--reconcile-interval', interval], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  host.stdout.on('data', (d: Buffer) => (out += d.toString()));
  host.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const until = Date.now() + 15_000;
    while (!/\(id st-[0-9a-f]+\), pid \d+/.test(out)) {
      if (Date.now() > until) throw new Error(`control serve did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = Date.now();
    const applied = spawnSync(BIN, ['plan', 'apply', plan, '--state', state], { cwd: dir, env });
    if (applied.status !== 0 && applied.status !== 3) throw new Error(`plan apply exited ${applied.status}: ${applied.stderr.toString()}`);
    await new Promise((r) => setTimeout(r, Math.max(0, SECONDS * 1000 - (Date.now() - t0))));
    const seconds = (Date.now() - t0) / 1000;
    await new Promise((r) => {
      host.once('exit', r);
      host.kill('SIGTERM');
    });
    const n = fs.existsSync(attempts) ? fs.readFileSync(attempts, 'utf8').trim().split('\n').filter(Boolean).length : 0;
    const st = spawnSync(BIN, ['status', '--json', '--cached', '--events', '10000', '--state', state], { cwd: dir, env: { ...env, FACTORY_CONTROL: 'off' } });
    const events = (JSON.parse(st.stdout.toString()) as { events: { kind: string }[] }).events;
    const kinds = new Map<string, number>();
    for (const e of events) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    console.log(
      `--reconcile-interval ${interval}: ${n} attempts and ${events.length} events in ${seconds.toFixed(1)} s ` +
        `(${((events.length / seconds) * 60).toFixed(0)} events a minute): ${[...kinds].map(([k, c]) => `${k} ${c}`).join(', ')}`,
    );
  } finally {
    if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
    spawnSync(BIN, ['plan', 'destroy', plan, '--state', state], { cwd: dir, env: { ...env, FACTORY_CONTROL: 'off' } });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`restart backoff bench: ${BIN}, ${SECONDS} s a run, restartBackoff ${BACKOFF || '(left out)'}`);
for (const interval of INTERVALS) await run(interval);
