/**
 * A real control host (`factory control serve --listen 127.0.0.1:0`) over TLS, driven through the
 * API client: reads answer while an apply of many processes runs; the event stream, cut and
 * resumed with Last-Event-ID, is a contiguous sequence of revisions; a revision no longer kept gets
 * `reset`; a host SIGKILLed mid-apply is replaced by a new one that recovers the state, and nothing
 * runs twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, test } from 'vitest';
import { ApiClient } from '../../src/client/http.js';
import { followEvents } from '../../src/client/sse.js';
import { BIN, pidAlive, runCli, scratchDir } from '../helpers/cli.js';

const scratch = scratchDir('factory-api-host-');
const state = path.join(scratch.dir, 'state');
const hosts: ChildProcess[] = [];

interface Host {
  child: ChildProcess;
  client: ApiClient;
  log: () => string;
}

/** startHost starts a host with TLS on a free loopback port and returns a client pinned to its certificate. */
async function startHost(env: Record<string, string> = {}): Promise<Host> {
  const child = spawn(BIN, ['control', 'serve', '--state', state, '--listen', '127.0.0.1:0', '--reconcile-interval', '0'], {
    cwd: scratch.dir,
    env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  hosts.push(child);
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const end = Date.now() + 20_000;
  let m: RegExpMatchArray | null = null;
  while (!(m = log.match(/serving https:\/\/(\S+) \(TLS certificate .*SHA-256 fingerprint ([0-9A-F:]+)\)/))) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`control serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const token = readFileSync(path.join(state, 'tokens', 'root'), 'utf8').trim();
  const client = new ApiClient({ endpoints: [`https://${m[1]}`], token, fingerprints: [m[2]!], timeoutMs: 60_000 });
  await client.getJson('/v1/tasks').catch((err: Error) => {
    throw new Error(`${err.message}\ntoken ${token}\nhost log:\n${log}`);
  });
  return { child, client, log: () => log };
}

function planText(name: string, count: number): string {
  return `name: ${name}\nproject: e2e\nprocesses:\n  - name: nap\n    count: ${count}\n    command: [sleep, "600"]\n    resources: {cpus: 0.01, mem: 4Mi}\n`;
}

type TaskView = { task: string; pid?: number; state: string };

afterEach(async () => {
  // a failed test leaves no host behind for the next one
  for (const h of hosts.splice(0)) {
    if (h.exitCode !== null || h.signalCode !== null) continue;
    h.kill('SIGTERM');
    const t = setTimeout(() => h.kill('SIGKILL'), 10_000);
    await new Promise((r) => h.once('exit', r));
    clearTimeout(t);
  }
});

afterAll(async () => {
  await runCli(['plan', 'destroy', path.join(scratch.dir, 'many.yaml'), path.join(scratch.dir, 'one.yaml'), '--state', state], { cwd: scratch.dir, env: { FACTORY_CONTROL: 'off' } }).catch(() => undefined);
  for (const h of hosts) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
  scratch.cleanup();
});

test('reads answer from memory while an apply of 40 processes runs; the stream resumes with nothing lost or repeated', async () => {
  writeFileSync(path.join(scratch.dir, 'one.yaml'), planText('one', 1));
  writeFileSync(path.join(scratch.dir, 'many.yaml'), planText('many', 40));
  const host = await startHost();
  const apply = (file: string) =>
    host.client.stream<{ ok: boolean; changes: { create: number } }>('POST', '/v1/plans/apply', { plans: [{ file, text: readFileSync(path.join(scratch.dir, file), 'utf8') }] });
  expect((await apply('one.yaml')).ok).toBe(true);
  const first = await host.client.getJson<{ rev: number }>(`/v1/tasks/${encodeURIComponent('one/nap/0')}`);

  // follow the stream from here, on its own connection; cut it after a few events and resume
  const seen: number[] = [];
  const cut = new AbortController();
  const following = followEvents(host.client, { since: first.rev, follow: true, signal: cut.signal, onEvent: (e) => void seen.push(e.revision) });

  let done = false;
  const applying = apply('many.yaml').finally(() => (done = true));
  const during: number[] = [];
  while (!done) {
    const t0 = performance.now();
    const r = await host.client.getJson<{ task: TaskView }>(`/v1/tasks/${encodeURIComponent('one/nap/0')}`);
    if (!done) during.push(performance.now() - t0);
    expect(r.task.state).toBe('running');
    if (during.length === 3) cut.abort(); // the first stream goes away mid-apply
    await new Promise((r) => setTimeout(r, 10));
  }
  const result = await applying;
  expect(result.ok).toBe(true);
  expect(result.changes.create).toBe(40);
  // reads were answered while the apply held the state lock (not queued behind it)
  expect(during.length).toBeGreaterThanOrEqual(3);
  await following.catch(() => undefined);

  // resume from the last revision the first stream delivered
  const resumed: number[] = [];
  const last = seen.at(-1) ?? first.rev;
  await followEvents(host.client, { since: last, follow: false, onEvent: (e) => void resumed.push(e.revision) });
  const all = [...seen, ...resumed];
  const latest = (await host.client.getJson<{ rev: number }>('/v1/tasks')).rev;
  expect(all).toEqual(Array.from({ length: latest - first.rev }, (_, i) => first.rev + 1 + i));
  host.child.kill('SIGTERM');
  await new Promise((r) => host.child.once('exit', r));
}, 180_000);

test('a revision older than the log keeps gets an explicit reset, never a silent skip', async () => {
  const host = await startHost({ FACTORY_EVENTS_MAX: '5' });
  let reset = false;
  const got: number[] = [];
  await followEvents(host.client, { since: 1, follow: false, onEvent: (e) => void got.push(e.revision), onReset: () => void (reset = true) });
  expect(reset).toBe(true);
  host.child.kill('SIGTERM');
  await new Promise((r) => host.child.once('exit', r));
}, 60_000);

test('a host SIGKILLed mid-apply: the next host recovers the state and nothing runs twice', async () => {
  writeFileSync(path.join(scratch.dir, 'more.yaml'), planText('more', 30));
  const host = await startHost();
  const text = readFileSync(path.join(scratch.dir, 'more.yaml'), 'utf8');
  let progress = 0;
  const applying = host.client
    .stream('POST', '/v1/plans/apply', { plans: [{ file: 'more.yaml', text }] }, { onProgress: (l) => void (/started/.test(l) && progress++) })
    .catch((e: Error) => e);
  const until = Date.now() + 60_000;
  while (progress < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  expect(progress, 'the apply had started tasks when the host was killed').toBeGreaterThanOrEqual(5);
  host.child.kill('SIGKILL');
  const err = await applying;
  expect(err).toBeInstanceOf(Error);
  await new Promise((r) => (host.child.exitCode !== null || host.child.signalCode !== null ? r(undefined) : host.child.once('exit', r)));

  const next = await startHost();
  const again = await next.client.stream<{ ok: boolean }>('POST', '/v1/plans/apply', { plans: [{ file: 'more.yaml', text }] });
  expect(again.ok).toBe(true);
  const st = await next.client.getJson<{ tasks: TaskView[] }>('/v1/status');
  const mine = st.tasks.filter((t) => t.task.startsWith('more/'));
  expect(mine).toHaveLength(30);
  expect(new Set(mine.map((t) => t.pid)).size).toBe(30);
  for (const t of mine) expect(pidAlive(t.pid!)).toBe(true);
  const dirs = readdirSync(path.join(state, 'agents', 'local', 'tasks')).filter((d) => d.startsWith('more.'));
  expect(dirs).toHaveLength(30);
  await next.client.stream('POST', '/v1/plans/destroy', { plans: [{ file: 'more.yaml', text }] });
  expect(existsSync(path.join(state, 'control.sock'))).toBe(true);
  next.child.kill('SIGTERM');
  await new Promise((r) => next.child.once('exit', r));
}, 180_000);
