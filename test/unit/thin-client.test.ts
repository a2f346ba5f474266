/**
 * The thin client's flag table against the oclif manifest (`npm run build` writes it), and its
 * rule that a command naming a remote control host is left to the full CLI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forwardable, GLOBAL_FLAGS, namesRemote } from '../../src/cli/thin-client.js';
import { CLIENT_ENV, hostEnvironment, SERVED_COMMANDS } from '../../src/control/host-protocol.js';
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
    // the served commands redefine none of them: the table is exactly what they accept
    for (const id of SERVED_COMMANDS) {
      const globals = Object.entries(commands[id]!.flags).filter(([, f]) => f.helpGroup === 'GLOBAL' || f.helpGroup === 'REMOTE');
      expect(globals.map(([n]) => n).sort()).toEqual(Object.keys(GLOBAL_FLAGS).sort());
    }
  });

  it('the flags that name a remote are remote flags', () => {
    const status = manifest().status!.flags;
    for (const [name, f] of Object.entries(GLOBAL_FLAGS)) if (f.remote) expect(status[name]!.helpGroup).toBe('REMOTE');
  });
});

describe('a command that names a remote is not forwarded to the local host', () => {
  it('by --control, --context or FACTORY_CONTROL_URL', () => {
    expect(forwardable(['status'], noConfig)).toEqual({ id: 'status', rest: [] });
    expect(forwardable(['status', '--timeout', '5', '--token-file', 'x'], noConfig)).toEqual({ id: 'status', rest: ['--timeout', '5', '--token-file', 'x'] });
    expect(forwardable(['status', '--control', 'https://127.0.0.1:1'], noConfig)).toBeUndefined();
    expect(forwardable(['plan', 'apply', 'p.yaml', '--control=https://127.0.0.1:1'], noConfig)).toBeUndefined();
    expect(forwardable(['status', '--context', 'prod'], noConfig)).toBeUndefined();
    expect(forwardable(['status'], { ...noConfig, FACTORY_CONTROL_URL: 'https://127.0.0.1:1' })).toBeUndefined();
    // after --, words are arguments
    expect(namesRemote(['status', '--', '--control'], noConfig)).toBe(false);
  });

  it('by a current context in the client config', () => {
    const xdg = path.join(tmp, 'xdg');
    fs.mkdirSync(path.join(xdg, 'factory'), { recursive: true });
    const file = path.join(xdg, 'factory', 'config.yaml');
    fs.writeFileSync(file, 'contexts:\n  prod:\n    control: [https://127.0.0.1:1]\n');
    expect(forwardable(['status'], { XDG_CONFIG_HOME: xdg })).toBeDefined();
    fs.writeFileSync(file, 'current: "prod"\ncontexts:\n  prod:\n    control: [https://127.0.0.1:1]\n');
    expect(forwardable(['status'], { XDG_CONFIG_HOME: xdg })).toBeUndefined();
  });

  it('the client variables (URL, token) never travel to the local host', () => {
    const env = { FACTORY_CONTROL_URL: 'https://h:1', FACTORY_TOKEN: 'fct_0123456789ab_s', FACTORY_TOKEN_FILE: '/t', FACTORY_DEFAULT_X: '1' };
    expect(hostEnvironment(env)).toEqual({ FACTORY_DEFAULT_X: '1' });
    expect([...CLIENT_ENV].sort()).toEqual(['FACTORY_CONTROL_URL', 'FACTORY_TOKEN', 'FACTORY_TOKEN_FILE']);
  });
});
