/**
 * The thin client's flag table against the oclif manifest (`npm run build` writes it), and its
 * rule that a command naming a remote control host is left to the full CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { FAST_FLAGS, fastPathRequest, GLOBAL_FLAGS, namesRemote } from '../../src/cli/thin-client.js';
import { ROOT } from '../helpers/cli.js';

interface ManifestFlag {
  type: 'boolean' | 'option';
  helpGroup?: string;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-thin-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** noConfig is an environment whose client config does not exist. */
const noConfig = { XDG_CONFIG_HOME: path.join(tmp, 'none') };

function manifest(): Record<string, { flags: Record<string, ManifestFlag> }> {
  const file = path.join(ROOT, 'oclif.manifest.json');
  if (!fs.existsSync(file)) throw new Error('oclif.manifest.json is missing: run `npm run build` first');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { commands: Record<string, { flags: Record<string, ManifestFlag> }> }).commands;
}

describe('GLOBAL_FLAGS', () => {
  it('equals the global flags of every command in the oclif manifest, value-taking or not', () => {
    const commands = manifest();
    expect(Object.keys(commands).length).toBeGreaterThan(10);
    for (const [id, cmd] of Object.entries(commands)) {
      const globals = Object.entries(cmd.flags).filter(([, f]) => f.helpGroup === 'GLOBAL' || f.helpGroup === 'REMOTE');
      for (const [name, f] of globals) {
        expect(GLOBAL_FLAGS[name], `${id} --${name} is missing from GLOBAL_FLAGS`).toBeDefined();
        expect(GLOBAL_FLAGS[name]!.value, `${id} --${name}`).toBe(f.type === 'option');
      }
      // every table entry exists on every command (a command may redefine one as its own flag)
      for (const name of Object.keys(GLOBAL_FLAGS)) expect(cmd.flags[name], `${id} lacks --${name}`).toBeDefined();
    }
    // the fast path's commands redefine none of them: the table is exactly what they accept
    for (const id of Object.keys(FAST_FLAGS)) {
      const globals = Object.entries(commands[id]!.flags).filter(([, f]) => f.helpGroup === 'GLOBAL' || f.helpGroup === 'REMOTE');
      expect(globals.map(([n]) => n).sort()).toEqual(Object.keys(GLOBAL_FLAGS).sort());
    }
  });

  it('the flags that name a remote are remote flags', () => {
    const status = manifest().status!.flags;
    for (const [name, f] of Object.entries(GLOBAL_FLAGS)) if (f.remote) expect(status[name]!.helpGroup).toBe('REMOTE');
  });
});

describe('a command that names a remote is left to the full CLI', () => {
  it('by --control, --context or FACTORY_CONTROL_URL', () => {
    expect(namesRemote(['status'], noConfig)).toBe(false);
    expect(namesRemote(['status', '--timeout', '5', '--token-file', 'x'], noConfig)).toBe(false);
    expect(namesRemote(['status', '--control', 'https://127.0.0.1:1'], noConfig)).toBe(true);
    expect(namesRemote(['plan', 'apply', 'p.yaml', '--control=https://127.0.0.1:1'], noConfig)).toBe(true);
    expect(namesRemote(['status', '--context', 'prod'], noConfig)).toBe(true);
    expect(namesRemote(['status'], { ...noConfig, FACTORY_CONTROL_URL: 'https://127.0.0.1:1' })).toBe(true);
    // after --, words are arguments
    expect(namesRemote(['status', '--', '--control'], noConfig)).toBe(false);
  });

  it('by a current context in the client config', () => {
    const xdg = path.join(tmp, 'xdg');
    fs.mkdirSync(path.join(xdg, 'factory'), { recursive: true });
    const file = path.join(xdg, 'factory', 'config.yaml');
    fs.writeFileSync(file, 'contexts:\n  prod:\n    control: [https://127.0.0.1:1]\n');
    expect(namesRemote(['status'], { XDG_CONFIG_HOME: xdg })).toBe(false);
    fs.writeFileSync(file, 'current: "prod"\ncontexts:\n  prod:\n    control: [https://127.0.0.1:1]\n');
    expect(namesRemote(['status'], { XDG_CONFIG_HOME: xdg })).toBe(true);
  });
});

describe('fastPathRequest: the command lines the fast path runs without oclif', () => {
  const state = path.join(tmp, 'fast-state');
  const file = path.join(tmp, 'p.yaml');
  const folder = path.join(tmp, 'plans');
  let server: net.Server;
  const env = { ...noConfig };

  beforeAll(async () => {
    fs.mkdirSync(state, { recursive: true });
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(file, 'name: p\n');
    server = net.createServer();
    await new Promise<void>((r) => server.listen(path.join(state, 'control.sock'), r));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('takes status and plan apply with the flags it understands', () => {
    const socket = path.join(state, 'control.sock');
    expect(fastPathRequest(['status', '--state', state], env)).toEqual({ id: 'status', socket, json: false, timeoutS: undefined, cached: false, events: 10, files: [], seed: 1 });
    expect(fastPathRequest(['status', `--state=${state}`, '--json', '--cached', '--events', '0', '--timeout=2.5'], env)).toEqual({ id: 'status', socket, json: true, timeoutS: 2.5, cached: true, events: 0, files: [], seed: 1 });
    expect(fastPathRequest(['status'], { ...env, FACTORY_STATE: state })).toMatchObject({ id: 'status', socket });
    expect(fastPathRequest(['plan', 'apply', file, '--seed', '7', '--state', state, file], env)).toEqual({ id: 'plan:apply', socket, json: false, timeoutS: undefined, cached: false, events: 10, files: [file, file], seed: 7 });
    // status ignores FACTORY_INVENTORY through a host; plan apply would send it
    expect(fastPathRequest(['status', '--state', state], { ...env, FACTORY_INVENTORY: 'i.yaml' })).toBeDefined();
  });

  it('leaves everything else to the full CLI', () => {
    const no = (argv: string[], extra: Record<string, string> = {}) => expect(fastPathRequest(argv, { ...env, ...extra }), `${argv.join(' ')} ${JSON.stringify(extra)}`).toBeUndefined();
    const s = ['--state', state];
    for (const argv of [
      ['status', ...s, '--inventory', file],
      ['status', ...s, '--debug'],
      ['status', ...s, '--help'],
      ['status', ...s, '-h'],
      ['status', ...s, '--no-json'],
      ['status', ...s, '--json=true'],
      ['status', ...s, '--json', '--json'],
      ['status', ...s, '--events', 'x'],
      ['status', ...s, '--events', '-1'],
      ['status', ...s, '--events'],
      ['status', ...s, '--timeout', '0'],
      ['status', ...s, '--timeout', 'soon'],
      ['status', ...s, '--seed', '1'],
      ['status', ...s, 'extra'],
      ['status', ...s, '--'],
      ['status', '--state='],
      ['status', ...s, '--control', 'https://127.0.0.1:1'],
      ['status', ...s, '--context', 'prod'],
      ['status', ...s, '--token-file', file],
      ['plan', 'apply', ...s],
      ['plan', 'apply', folder, ...s],
      ['plan', 'apply', path.join(tmp, 'missing.yaml'), ...s],
      ['plan', 'apply', file, '--cached', ...s],
      ['plan', 'apply', file, '--seed', '1.5', ...s],
      ['plan', 'diff', file, ...s],
      ['plan', 'destroy', file, ...s],
      ['agents', 'list', ...s],
      ['status', '--state', tmp],
      ['status', '--state', path.join(tmp, 'nowhere')],
    ])
      no(argv);
    for (const extra of [{ FACTORY_THIN: 'off' } as Record<string, string>, { FACTORY_CONTROL: 'off' }, { FACTORY_CONTROL_URL: 'https://127.0.0.1:1' }, { DEBUG: '1' }, { FACTORY_TOKEN: 'fct_0123456789ab_s' }, { FACTORY_TOKEN_FILE: file }]) no(['status', ...s], extra);
    no(['plan', 'apply', file, ...s], { FACTORY_INVENTORY: file });
    // a regular file where the socket should be
    const notSock = path.join(tmp, 'not-sock');
    fs.mkdirSync(notSock, { recursive: true });
    fs.writeFileSync(path.join(notSock, 'control.sock'), '');
    no(['status', '--state', notSock]);
  });

  it('understands each flag as the commands define it (the oclif manifest)', () => {
    const commands = manifest();
    expect(Object.keys(FAST_FLAGS).sort()).toEqual(['plan:apply', 'status']);
    for (const [id, flags] of Object.entries(FAST_FLAGS)) {
      for (const [name, value] of Object.entries(flags)) expect(commands[id]!.flags[name]?.type, `${id} --${name}`).toBe(value ? 'option' : 'boolean');
    }
    // the fast path accepts these and no others
    expect(fastPathRequest(['status', '--state', state, '--seed', '1'], env)).toBeUndefined();
    expect(fastPathRequest(['plan', 'apply', file, '--state', state, '--events', '1'], env)).toBeUndefined();
  });
});
