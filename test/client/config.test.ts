/**
 * Client contexts: the config file round trip (XDG_CONFIG_HOME, mode 0600), and the `factory
 * context` and `factory events` commands through the built CLI (`npm run build` first).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkContext, configPath, readConfig, writeConfig } from '../../src/client/config.js';
import { BIN, runCli } from '../helpers/cli.js';
import { unixServer, type Running } from './servers.js';

let root: string;
const running: Running[] = [];

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-config-'));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** fresh makes a folder with its own XDG_CONFIG_HOME and returns the env for the CLI. */
function fresh(name: string): { dir: string; env: Record<string, string> } {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  return { dir, env: { XDG_CONFIG_HOME: path.join(dir, 'xdg'), FACTORY_CONTROL_URL: '', FACTORY_TOKEN: '', FACTORY_TOKEN_FILE: '', FACTORY_CONTROL: 'off' } };
}

/** sseServer answers /v1/events with revisions 1..3 and a heartbeat, recording the requests. */
async function sseServer(dir: string, seen: http.IncomingMessage[], name = 'control.sock'): Promise<Running> {
  const s = await unixServer(
    dir,
    (req, res) => {
      seen.push(req);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const r of [1, 2, 3]) res.write(`id: ${r}\ndata: ${JSON.stringify({ at: '2026-01-01T00:00:00Z', topic: 'task', kind: 'task-started', message: `task t${r} started` })}\n\n`);
      res.write(': heartbeat\n\n');
    },
    name,
  );
  running.push(s);
  return s;
}

describe('config file', () => {
  it('round-trips under XDG_CONFIG_HOME with mode 0600', () => {
    const xdg = path.join(root, 'unit-xdg');
    const file = configPath({ XDG_CONFIG_HOME: xdg, HOME: '/nowhere' });
    expect(file).toBe(path.join(xdg, 'factory', 'config.yaml'));
    expect(configPath({ HOME: '/home/u' })).toBe('/home/u/.config/factory/config.yaml');
    expect(readConfig(file)).toEqual({ contexts: {} });
    const ctx = checkContext('prod', { control: ['https://127.0.0.1:7443', 'unix:/run/f/control.sock'], tokenFile: '/t', fingerprint: 'ab'.repeat(32) });
    writeConfig({ current: 'prod', contexts: { prod: ctx } }, file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readConfig(file)).toEqual({ current: 'prod', contexts: { prod: { ...ctx, fingerprint: Array(32).fill('AB').join(':') } } });
    fs.writeFileSync(file, 'contexts: [1, 2]\n');
    expect(() => readConfig(file)).toThrow(/contexts must map names/);
    expect(() => checkContext('bad name', { control: ['https://x:1'] })).toThrow(/bad context name/);
    expect(() => checkContext('ok', { control: ['ftp://x'] })).toThrow(/scheme/);
  });
});

describe('factory context', () => {
  it('set, use, list, delete through the built CLI', async () => {
    const { dir, env } = fresh('ctx');
    const file = path.join(dir, 'xdg', 'factory', 'config.yaml');
    let r = await runCli(['context', 'list', '--json'], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ current: null, contexts: [] });

    // FACTORY_CONTROL_URL must not leak into a context: it records what was typed
    r = await runCli(['context', 'set', 'prod', '--control', 'https://127.0.0.1:7443,https://127.0.0.2:7443', '--fingerprint', 'ab'.repeat(32), '--token-file', 'prod.token'], {
      cwd: dir,
      env: { ...env, FACTORY_CONTROL_URL: 'https://127.0.0.9:1' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Context prod added (current)');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    r = await runCli(['context', 'set', 'lab', '--control', 'unix:/tmp/lab.sock'], { cwd: dir, env });
    expect(r.code).toBe(0);

    r = await runCli(['context', 'list', '--json'], { cwd: dir, env });
    const listed = JSON.parse(r.stdout) as { current: string; contexts: { name: string; control: string[]; tokenFile?: string; fingerprint?: string; current: boolean }[] };
    expect(listed.current).toBe('prod');
    expect(listed.contexts.map((c) => c.name)).toEqual(['lab', 'prod']);
    expect(listed.contexts[1]).toMatchObject({ control: ['https://127.0.0.1:7443', 'https://127.0.0.2:7443'], tokenFile: path.join(dir, 'prod.token'), current: true });
    expect(listed.contexts[1]!.fingerprint).toBe(Array(32).fill('AB').join(':'));

    r = await runCli(['context', 'use', 'lab'], { cwd: dir, env });
    expect(r.code).toBe(0);
    r = await runCli(['context', 'list'], { cwd: dir, env });
    expect(r.stdout).toMatch(/^\*\s+lab\s+unix:\/tmp\/lab\.sock/m);

    r = await runCli(['context', 'use', 'nope'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no context "nope"');
    expect(r.stderr).toContain('hint: known: lab, prod');

    r = await runCli(['context', 'set', 'bad', '--control', 'ftp://x'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/scheme must be https, http or unix/);

    // changing one field keeps the others
    r = await runCli(['context', 'set', 'prod', '--control', 'https://127.0.0.3:7443'], { cwd: dir, env });
    expect(readConfig(file).contexts.prod).toMatchObject({ control: ['https://127.0.0.3:7443'], tokenFile: path.join(dir, 'prod.token') });

    r = await runCli(['context', 'delete', 'lab', '--json'], { cwd: dir, env });
    expect(JSON.parse(r.stdout)).toEqual({ deleted: 'lab', current: null });
    expect(readConfig(file)).toMatchObject({ contexts: { prod: {} } });
    expect(readConfig(file).current).toBeUndefined();
  });
});

describe('factory events', () => {
  it('without a control host named nor serving the state directory: a clear error', async () => {
    const { dir, env } = fresh('none');
    const r = await runCli(['events'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs a control host, and none is named/);
    expect(r.stderr).toMatch(/hint: pass --control/);
  });

  it('prints the events of --control, of the current context (with its token) and of the local socket', async () => {
    const { dir, env } = fresh('events');
    const seen: http.IncomingMessage[] = [];
    const remote = await sseServer(dir, seen, 'remote.sock');
    let r = await runCli(['events', '--control', remote.url, '--topic', 'task'], { cwd: dir, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([1, 2, 3].map((n) => `${String(n).padStart(6)}  2026-01-01T00:00:00Z  task  task-started  task t${n} started`));
    expect(seen[0]!.url).toBe('/v1/events?topic=task&follow=false');

    r = await runCli(['events', '--json', '--since', '1'], { cwd: dir, env: { ...env, FACTORY_CONTROL_URL: remote.url } });
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rev: number })).toMatchObject([{ rev: 2, topic: 'task' }, { rev: 3 }]);
    // the fake server ignores since; the client still never prints revision 1 again
    expect(seen[1]!.headers['last-event-id']).toBe('1');

    fs.writeFileSync(path.join(dir, 'tok'), 'fct_0123456789ab_s3cret\n');
    r = await runCli(['context', 'set', 'here', '--control', remote.url, '--token-file', 'tok'], { cwd: dir, env });
    expect(r.code).toBe(0);
    r = await runCli(['events'], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(seen[2]!.headers.authorization).toBe('Bearer fct_0123456789ab_s3cret');
    // FACTORY_TOKEN over the context's token file; --token-file over both
    r = await runCli(['events'], { cwd: dir, env: { ...env, FACTORY_TOKEN: 'fct_aaaaaaaaaaaa_env' } });
    expect(seen[3]!.headers.authorization).toBe('Bearer fct_aaaaaaaaaaaa_env');
    fs.writeFileSync(path.join(dir, 'tok2'), 'fct_bbbbbbbbbbbb_flag');
    r = await runCli(['events', '--token-file', 'tok2'], { cwd: dir, env: { ...env, FACTORY_TOKEN: 'fct_aaaaaaaaaaaa_env' } });
    expect(seen[4]!.headers.authorization).toBe('Bearer fct_bbbbbbbbbbbb_flag');
    r = await runCli(['events', '--context', 'nope'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no context "nope"');

    // no context, no --control: the state directory's own control host
    const bare = fresh('events-local');
    const state = path.join(bare.dir, '.factory');
    fs.mkdirSync(state);
    const localSeen: http.IncomingMessage[] = [];
    await sseServer(state, localSeen);
    r = await runCli(['events'], { cwd: bare.dir, env: bare.env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('task t3 started');
    expect(localSeen[0]!.headers.authorization).toBeUndefined();
  });

  it('-f follows until interrupted and exits 0', async () => {
    const { dir, env } = fresh('follow');
    const s = await sseServer(dir, [], 'follow.sock');
    const child = spawn(BIN, ['events', '-f', '--control', s.url], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`events -f did not print 3 events: ${out} ${err}`));
      }, 20_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.split('\n').length > 3) child.kill('SIGINT');
      });
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('task t3 started');
  });
});
