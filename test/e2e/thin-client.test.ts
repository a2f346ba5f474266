/**
 * The fast path (src/cli/fast-path.ts, loaded by bin/run.cjs without oclif) against the full CLI
 * (FACTORY_THIN=off) through the same real `factory control serve`: `status` and `plan apply` print
 * the same bytes on stdout and stderr and exit alike, a bad plan gives the same file:line:col
 * errors, the host's error answers and timeouts print alike; a folder, an unknown flag or a dead
 * socket goes to the full CLI. NODE_DEBUG=esm tells whether dist/cli/main.js (oclif) was loaded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BIN, pidAlive, runCli, scratchDir, waitFor, type CliResult } from '../helpers/cli.js';

const PLAN = `name: thin
project: e2e
processes:
  - name: nap
    count: 1
    command: ["sleep", "600"]
    resources: {cpus: 0.1, mem: 16Mi}
`;
const BAD = `name: bad
project: e2e
processes:
  - name: a
    count: two
`;

const scratch = scratchDir('factory-thin-e2e-');
const state = path.join(scratch.dir, 'state');
const plan = path.join(scratch.dir, 'thin.yaml');
const pids = new Set<number>();
let host: ChildProcess | undefined;

/** run runs the CLI in the scratch folder; full forces the full CLI (FACTORY_THIN=off). */
function run(args: string[], opts: { full?: boolean; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  return runCli(args, { cwd: opts.cwd ?? scratch.dir, env: { ...(opts.full ? { FACTORY_THIN: 'off' } : {}), ...opts.env } });
}

/** loadsOclif runs the CLI with NODE_DEBUG=esm and tells whether it loaded dist/cli/main.js. */
async function loadsOclif(args: string[], env: Record<string, string> = {}, cwd = scratch.dir): Promise<boolean> {
  const r = await runCli(args, { cwd, env: { NODE_DEBUG: 'esm', ...env } });
  return /dist\/cli\/main\.js/.test(r.stderr);
}

/** same runs args on the fast path and on the full CLI and expects the same bytes and exit code. */
async function same(args: string[], opts: { cwd?: string; mask?: (s: string) => string } = {}): Promise<CliResult> {
  const mask = opts.mask ?? ((s: string) => s);
  const fast = await run(args, { cwd: opts.cwd });
  const full = await run(args, { full: true, cwd: opts.cwd });
  expect(mask(fast.stdout), `stdout of ${args.join(' ')}`).toBe(mask(full.stdout));
  expect(mask(fast.stderr), `stderr of ${args.join(' ')}`).toBe(mask(full.stderr));
  expect(fast.code, `exit code of ${args.join(' ')}`).toBe(full.code);
  return fast;
}

beforeAll(async () => {
  writeFileSync(plan, PLAN);
  writeFileSync(path.join(scratch.dir, 'bad.yaml'), BAD);
  mkdirSync(path.join(scratch.dir, 'plans'));
  writeFileSync(path.join(scratch.dir, 'plans', 'thin.yaml'), PLAN);
  host = spawn(BIN, ['control', 'serve', '--state', state, '--reconcile-interval', '0'], {
    cwd: scratch.dir,
    env: { ...process.env, CI: '', FACTORY_STATE: '', FACTORY_INVENTORY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  host.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  host.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  expect(await waitFor(() => /state .* \(id st-[0-9a-f]+\), pid \d+/.test(out), 15_000, 50), `control serve did not start:\n${out}`).toBe(true);
  // the first apply (it creates the task) by the full CLI: what follows compares runs on the same state
  const first = await run(['plan', 'apply', 'thin.yaml', '--state', state, '--json'], { full: true });
  expect(first.code, first.stderr).toBe(0);
  for (const r of (JSON.parse(first.stdout) as { results: { pid?: number }[] }).results) if (r.pid) pids.add(r.pid);
});

afterAll(async () => {
  if (host && host.exitCode === null && host.signalCode === null) {
    const done = new Promise((r) => host!.once('exit', r));
    host.kill('SIGTERM');
    await done;
  }
  const st = await run(['status', '--json', '--cached', '--state', state], { env: { FACTORY_CONTROL: 'off' } });
  try {
    for (const t of (JSON.parse(st.stdout) as { tasks: { pid?: number }[] }).tasks) if (t.pid) pids.add(t.pid);
  } catch {
    // no state
  }
  await run(['plan', 'destroy', plan, '--state', state], { env: { FACTORY_CONTROL: 'off' } });
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  scratch.cleanup();
});

describe('the fast path against the full CLI, through the same host', () => {
  test('status (cached, live, --json, --events) prints the same bytes, without loading oclif', async () => {
    const r = await same(['status', '--cached', '--state', state]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^thin\/nap\/0 +local +process +\d+ +running/m);
    expect(r.stdout).toMatch(/Control host: pid \d+ since/);
    await same(['status', '--state', state, '--events', '0']);
    await same(['status', `--state=${state}`, '--json', '--cached', '--events', '3', '--timeout', '5']);
    expect(await loadsOclif(['status', '--cached', '--state', state])).toBe(false);
    expect(await loadsOclif(['status', '--cached', '--state', state], { FACTORY_THIN: 'off' })).toBe(true);
  });

  test('plan apply prints the same progress, result and exit code, without loading oclif', async () => {
    const r = await same(['plan', 'apply', 'thin.yaml', '--state', state]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('applying thin.yaml\n  connecting to 1 agent\n  agent local: connected\napply done\n');
    expect(r.stdout).toMatch(/\nNo changes\.\n$/);
    await same(['plan', 'apply', plan, '--json', '--seed', '7', '--state', state]);
    expect(await loadsOclif(['plan', 'apply', 'thin.yaml', '--state', state])).toBe(false);
  });

  test('a bad plan gives the same file:line:col errors and exit code, under the names the user typed', async () => {
    const r = await same(['plan', 'apply', './bad.yaml', '--state', state]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\.\/bad\.yaml:5:12: processes\[0\]\.count: /m);
    const abs = await same(['plan', 'apply', path.join(scratch.dir, 'bad.yaml'), 'thin.yaml', '--state', state]);
    expect(abs.stderr).toContain(`${path.join(scratch.dir, 'bad.yaml')}:5:12: `);
    // two plans of one name: the host's message names both files as given
    const dup = await same(['plan', 'apply', plan, 'plans/thin.yaml', '--state', state]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain(`factory: two plans are named 'thin' (${plan}, plans/thin.yaml)`);
  });

  test('a folder, an unknown flag or --inventory goes to the full CLI', async () => {
    expect(await loadsOclif(['plan', 'apply', 'plans', '--state', state])).toBe(true);
    expect(await loadsOclif(['plan', 'apply', 'thin.yaml', '--inventory', 'none.yaml', '--state', state])).toBe(true);
    expect(await loadsOclif(['status', '--cached', '--debug', '--state', state])).toBe(true);
    const r = await same(['plan', 'apply', 'plans', '--state', state]);
    expect(r.code).toBe(0);
  });
});

describe('the fast path against a host that answers badly or not at all', () => {
  const fake = path.join(scratch.dir, 'fake');
  const sock = path.join(fake, 'control.sock');
  let server: http.Server | undefined;

  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  test("the host's error answers print as the full CLI prints them (message, hint, exit code); a silent host times out alike", async () => {
    mkdirSync(fake);
    const seen: string[] = [];
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} deadline=${/^\d+$/.test(String(req.headers['x-factory-deadline']))}`);
      if (req.url!.startsWith('/v1/status') && req.url!.includes('cached=false')) return; // never answers
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'E_BUSY', message: 'the state is busy (thin.yaml)', hint: 'try again', exitCode: 3 } }));
    });
    await new Promise<void>((r) => server!.listen(sock, r));
    const r = await same(['status', '--cached', '--state', fake]);
    expect(r.stderr).toBe('factory: the state is busy (thin.yaml)\nhint: try again\n');
    expect(r.code).toBe(3);
    const a = await same(['plan', 'apply', 'thin.yaml', '--state', fake]);
    expect(a.stderr).toBe('applying thin.yaml\napply failed\nfactory: the state is busy (thin.yaml)\nhint: try again\n');
    const slow = await same(['status', '--timeout', '0.5', '--state', fake], { mask: (s) => s.replace(/request [0-9a-f-]{36}/g, 'request ID') });
    expect(slow.stderr).toMatch(new RegExp(`^factory: control host unix:${sock.replace(/[.]/g, '\\.')} did not answer within 0\\.5 s \\(request [0-9a-f-]{36}\\)\nhint: raise --timeout`));
    expect(slow.code).toBe(1);
    expect(seen.every((s) => s.endsWith('deadline=true'))).toBe(true);
    expect(await loadsOclif(['status', '--cached', '--state', fake])).toBe(false);
  });

  test('a dead socket (its host killed) goes to the full CLI, which runs alone', async () => {
    const dead = path.join(scratch.dir, 'dead');
    mkdirSync(dead);
    // a socket left behind: its process killed before it could remove it
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path.join(dead, 'control.sock'))}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child.stdout!.once('data', r));
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    expect(await loadsOclif(['status', '--cached', '--state', dead])).toBe(true);
    const r = await same(['status', '--cached', '--state', dead]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No tasks\./);
  });
});
