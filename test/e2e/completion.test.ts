/**
 * Shell completion (@oclif/plugin-autocomplete) on the built CLI: `factory autocomplete bash|zsh`
 * print the setup and write the completion functions under the oclif cache directory
 * ($XDG_CACHE_HOME/factory/autocomplete, a temp folder here), and the bash completion that
 * `factory autocomplete script bash` sets up completes our commands and flags when bash runs it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, scratchDir } from '../helpers/cli.js';

let scratch: { dir: string; cleanup: () => void };
let env: Record<string, string>;
let cache: string;

beforeAll(() => {
  scratch = scratchDir('factory-completion-');
  // the plugin writes its cache under the oclif cache dir: keep it (and any config) in the scratch folder
  env = { HOME: scratch.dir, XDG_CACHE_HOME: path.join(scratch.dir, 'cache'), XDG_CONFIG_HOME: path.join(scratch.dir, 'config'), FACTORY_CACHE_DIR: '' };
  cache = path.join(scratch.dir, 'cache', 'factory', 'autocomplete');
});
afterAll(() => scratch.cleanup());

/** completeBash runs the completion the setup line installs, as bash does on TAB after `words`. */
function completeBash(setup: string, words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `${setup}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _factory_autocomplete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return [...new Set(r.stdout.split('\n').filter(Boolean))].sort();
}

describe('shell completion', () => {
  test('autocomplete bash and autocomplete zsh print the setup and write the completion functions', async () => {
    for (const shell of ['bash', 'zsh']) {
      const r = await runCli(['autocomplete', shell], { cwd: scratch.dir, env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`printf "$(factory autocomplete script ${shell})" >> ~/.${shell}rc`);
    }
    const zsh = readFileSync(path.join(cache, 'functions', 'zsh', '_factory'), 'utf8');
    expect(zsh).toMatch(/^_factory_plan\(\) \{/m);
    expect(zsh).toMatch(/^"apply\[Converge/m);
    expect(zsh).toMatch(/^"status\[List agents and tasks/m);
    const bash = readFileSync(path.join(cache, 'functions', 'bash', 'factory.bash'), 'utf8');
    expect(bash).toMatch(/^plan:apply .*--seed/m);
    expect(bash).toMatch(/^status .*--cached/m);
  });

  test('the bash completion from autocomplete script bash completes commands, subcommands and flags', async () => {
    const refresh = await runCli(['autocomplete', '--refresh-cache'], { cwd: scratch.dir, env });
    expect(refresh.code, refresh.stderr).toBe(0);
    const script = await runCli(['autocomplete', 'script', 'bash'], { cwd: scratch.dir, env });
    expect(script.code, script.stderr).toBe(0);
    expect(script.stdout).toContain(`FACTORY_AC_BASH_SETUP_PATH=${path.join(cache, 'bash_setup')}`);
    const setup = script.stdout.trim();
    expect(completeBash(setup, ['factory', ''])).toEqual(expect.arrayContaining(['agents', 'dashboard', 'plan', 'status', 'vm']));
    expect(completeBash(setup, ['factory', 'pl'])).toEqual(['plan']);
    expect(completeBash(setup, ['factory', 'plan', ''])).toEqual(['apply', 'destroy', 'diff']);
    expect(completeBash(setup, ['factory', 'st'])).toEqual(['state', 'status']);
    expect(completeBash(setup, ['factory', 'state', ''])).toEqual(['migrate']);
    expect(completeBash(setup, ['factory', 'plan', 'apply', '--se'])).toEqual(['--seed']);
  });
});
