/**
 * Bad input through the built CLI: a clear message (file:line:col for plans), exit 1, no stack
 * trace, and nothing changed — no state written, no process started.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, pidAlive, runCli, scratchDir } from '../helpers/cli.js';

const scratch = scratchDir();
afterAll(() => scratch.cleanup());

const bad = (name: string) => path.join(ROOT, 'fixtures', 'plans', 'bad', name);
const STACK = /\n\s+at .+\(.*:\d+:\d+\)|\n\s+at file:/;

function expectCleanError(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp, json = false) {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(STACK);
  // with --json the error is also one JSON document on stdout; without, stdout stays empty
  if (json) expect(JSON.parse(r.stdout).error.code).toMatch(/^E_[A-Z_]+$/);
  else expect(r.stdout).toBe('');
}

describe('bad plans are refused before anything happens', () => {
  test.each([
    ['malformed.yaml', /malformed\.yaml:5:1: .*Flow sequence/],
    ['unknown-key.yaml', /unknown-key\.yaml:7:5: processes\[0\]\.resouces: unknown key 'resouces' \(did you mean 'resources'\?\)/],
    ['bad-units.yaml', /bad-units\.yaml:\d+:\d+: .*unknown unit/],
    ['count-absurd.yaml', /count-absurd\.yaml:\d+:\d+: .*count/],
    ['alias-bomb.yaml', /alias-bomb\.yaml:1:1: .*alias/i],
    ['binary.yaml', /binary\.yaml:1:1: .*not a text file/],
    ['empty.yaml', /empty\.yaml:1:1: .*empty plan/],
    ['duplicate-group.yaml', /duplicate group name/],
    ['bad-names.yaml', /bad-names\.yaml:2:7: name: invalid name 'My_Plan'/],
    ['command-string.yaml', /command must be a list/],
    ['bad-constraints.yaml', /bad-constraints\.yaml:\d+:\d+: .*constraint/],
  ])('%s', async (file, pattern) => {
    const state = path.join(scratch.dir, `state-${file}`);
    for (const args of [['plan', 'diff', '--offline'], ['plan', 'apply'], ['plan', 'apply', '--json']]) {
      const r = await runCli([...args, bad(file), '--state', state], { cwd: scratch.dir });
      expectCleanError(r, pattern, args.includes('--json'));
    }
    // nothing was written: the state dir holds no state file and no agent folder
    const left = existsSync(state) ? readdirSync(state).filter((f) => !f.startsWith('.')) : [];
    expect(left.filter((f) => f === 'state.json' || f === 'agents')).toEqual([]);
  });

  test('plans and inventories written as JSON name file:line:col too (read by JSON.parse, positioned on demand)', async () => {
    const plan = path.join(scratch.dir, 'web.json');
    writeFileSync(plan, JSON.stringify({ name: 'web', processes: [{ name: 'api', command: ['sleep', '1'], resources: { cpus: 1, mem: '2Gb' } }] }, null, 2));
    const inventory = path.join(scratch.dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ idcs: [{ name: 'bj1', clusters: [{ name: 'c1', agents: [{ name: 'h1', local: true, resouces: { cpus: 8 } }] }] }] }, null, 2));
    const good = path.join(ROOT, 'examples', 'quickstart.yaml');
    const state = path.join(scratch.dir, 'state-json');
    expectCleanError(await runCli(['plan', 'diff', '--offline', plan, '--state', state], { cwd: scratch.dir }), /web\.json:12:16: processes\[0\]\.resources\.mem: unknown unit 'Gb' in '2Gb'/);
    const r = await runCli(['plan', 'diff', '--offline', '--json', '--inventory', inventory, good, '--state', state], { cwd: scratch.dir });
    expectCleanError(r, /inventory\.json:12:15: idcs\[0\]\.clusters\[0\]\.agents\[0\]\.resouces: unknown key 'resouces' \(did you mean 'resources'\?\)/, true);
  });

  test('a missing plan file names the file', async () => {
    const r = await runCli(['plan', 'diff', '--offline', 'nope.yaml', '--state', path.join(scratch.dir, 's0')], { cwd: scratch.dir });
    expectCleanError(r, /nope\.yaml/);
  });

  test('--debug shows the stack trace that is otherwise hidden', async () => {
    const r = await runCli(['plan', 'diff', '--offline', bad('unknown-key.yaml'), '--debug', '--state', path.join(scratch.dir, 's1')], { cwd: scratch.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SpecError/);
  });
});

describe('state problems are refused with a clear message', () => {
  const plan = path.join(scratch.dir, 'tiny.yaml');
  writeFileSync(plan, 'name: tiny\nprocesses:\n  - name: nap\n    command: [sleep, "600"]\n');

  test('an unusable state dir', async () => {
    const file = path.join(scratch.dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await runCli(['plan', 'apply', plan, '--state', path.join(file, 'state')], { cwd: scratch.dir });
    expectCleanError(r, /state directory .* is not usable/);
  });

  test('a corrupt state file is refused, kept and never overwritten', async () => {
    const state = path.join(scratch.dir, 'corrupt');
    mkdirSync(state, { recursive: true });
    writeFileSync(path.join(state, 'state.json'), '{"version":1,"tasks":');
    const r = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expectCleanError(r, /state file .*state\.json is corrupt/);
    expect(r.stderr).toMatch(/hint: .*will not overwrite it/);
    expect(readFileSync(path.join(state, 'state.json'), 'utf8')).toBe('{"version":1,"tasks":');
    expect(readdirSync(state).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
    expect(existsSync(path.join(state, 'agents'))).toBe(false);
  });

  test('a bad inventory names its file, line and column', async () => {
    const inv = path.join(scratch.dir, 'inv.yaml');
    writeFileSync(inv, 'idcs:\n  - name: a\n    clusters:\n      - name: c\n        agents:\n          - name: h1\n            locl: true\n');
    const r = await runCli(['plan', 'diff', '--offline', plan, '--inventory', inv, '--state', path.join(scratch.dir, 's2')], { cwd: scratch.dir });
    expectCleanError(r, /inv\.yaml:7:13: .*locl/);
  });
});

describe('runtime failures are reported per task, with the state kept true', () => {
  test('a command that does not exist marks its task failed with the exec error', async () => {
    const state = path.join(scratch.dir, 'missing-cmd');
    const plan = path.join(scratch.dir, 'missing-cmd.yaml');
    writeFileSync(plan, 'name: broken\nprocesses:\n  - name: ghost\n    command: [definitely-not-a-command-xyz, "--flag"]\n  - name: fine\n    command: [sleep, "600"]\n');
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    // a task failed to start: exit 3 (1 is kept for errors)
    expect(r.code).toBe(3);
    const a = JSON.parse(r.stdout);
    expect(a.ok).toBe(false);
    const ghost = a.results.find((x: { task: string }) => x.task === 'broken/ghost/0');
    expect(ghost.ok).toBe(false);
    expect(ghost.error).toMatch(/definitely-not-a-command-xyz.*not found/);
    const s = JSON.parse((await runCli(['status', '--json', '--state', state], { cwd: scratch.dir })).stdout);
    const g = s.tasks.find((t: { task: string }) => t.task === 'broken/ghost/0');
    expect(g.state).toBe('failed');
    const fine = s.tasks.find((t: { task: string }) => t.task === 'broken/fine/0');
    expect(fine.state).toBe('running');
    expect(pidAlive(fine.pid)).toBe(true);
    const d = await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
    expect(pidAlive(fine.pid)).toBe(false);
  });

  test('a group that can never fit is unplaced with its reason, and diff exits 0', async () => {
    const plan = path.join(scratch.dir, 'huge.yaml');
    writeFileSync(plan, 'name: huge\nprocesses:\n  - name: whale\n    command: [sleep, "1"]\n    resources: {cpus: 4000, mem: 1Pi}\n');
    const r = await runCli(['plan', 'diff', plan, '--offline', '--json', '--state', path.join(scratch.dir, 's3')], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.placements).toEqual([]);
    expect(d.unplaced).toHaveLength(1);
    expect(d.unplaced[0]).toMatchObject({ task: 'huge/whale/0', group: 'whale' });
    expect(d.unplaced[0].reason).toMatch(/cpus: 1 agent/);
    const human = await runCli(['plan', 'diff', plan, '--offline', '--state', path.join(scratch.dir, 's3')], { cwd: scratch.dir });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Unplaced \(1\):\n  huge\/whale \(1 task\)\n    .*cpus/);
    // a CI job asks with --detailed-exitcode: 3 says some task cannot be placed
    const ci = await runCli(['plan', 'diff', plan, '--offline', '--detailed-exitcode', '--state', path.join(scratch.dir, 's3')], { cwd: scratch.dir });
    expect(ci.code).toBe(3);
  });

  test('an apply that leaves a task unplaced exits 3, not 0, though nothing failed', async () => {
    const plan = path.join(scratch.dir, 'half.yaml');
    const state = path.join(scratch.dir, 's-half');
    writeFileSync(plan, 'name: half\nprocesses:\n  - name: small\n    command: [sleep, "600"]\n    resources: {cpus: 0.01, mem: 4Mi}\n  - name: whale\n    command: [sleep, "1"]\n    resources: {cpus: 4000, mem: 1Pi}\n');
    const r = await runCli(['plan', 'apply', plan, '--state', state, '--json'], { cwd: scratch.dir });
    expect(r.code, r.stderr).toBe(3);
    const a = JSON.parse(r.stdout);
    expect(a.ok).toBe(true);
    expect(a.unplaced.map((u: { task: string }) => u.task)).toEqual(['half/whale/0']);
    const again = await runCli(['plan', 'apply', plan, '--state', state], { cwd: scratch.dir });
    expect(again.code).toBe(3);
    expect(again.stdout).toMatch(/Unplaced \(1\)/);
    const d = await runCli(['plan', 'destroy', plan, '--state', state], { cwd: scratch.dir });
    expect(d.code, d.stderr).toBe(0);
  });

  test('with --json an error is a JSON document on stdout too (a script never parses stderr)', async () => {
    const bad = path.join(scratch.dir, 'json-bad.yaml');
    writeFileSync(bad, 'name: jb\nprocesses:\n  - name: x\n    colour: red\n    command: [sleep, "1"]\n');
    const r = await runCli(['plan', 'apply', bad, '--json', '--state', path.join(scratch.dir, 's-json')], { cwd: scratch.dir });
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.error).toMatchObject({ code: 'E_SPEC_INVALID' });
    expect(doc.error.issues[0]).toMatchObject({ file: bad, line: 4, col: 5 });
    expect(r.stderr).toMatch(/json-bad\.yaml:4:5: .*colour/);
    const usage = await runCli(['status', '--json', '--no-such-flag'], { cwd: scratch.dir });
    expect(usage.code).toBe(1);
    expect(JSON.parse(usage.stdout).error).toMatchObject({ code: 'E_USAGE', message: expect.stringMatching(/no-such-flag/) });
    const missing = await runCli(['logs', 'nope/0', '--json', '--state', path.join(scratch.dir, 's-json')], { cwd: scratch.dir });
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout).error).toMatchObject({ code: 'E_TASK_UNKNOWN' });
  });
});

describe('command-line mistakes exit 1 (2 means "changes present")', () => {
  test('an unknown command suggests the closest one', async () => {
    const r = await runCli(['stats'], { cwd: scratch.dir });
    expectCleanError(r, /unknown command 'stats' \(did you mean 'status'\?\)/);
  });

  test('logs -n with a negative count is refused', async () => {
    const r = await runCli(['logs', 'x/0', '-n', '-3', '--state', path.join(scratch.dir, 's-logs')], { cwd: scratch.dir });
    expectCleanError(r, /Expected an integer greater than or equal to 0/);
  });

  test('an unknown flag is named', async () => {
    const r = await runCli(['status', '--bogus'], { cwd: scratch.dir });
    expectCleanError(r, /Nonexistent flag: --bogus/);
  });
});

describe('asking for help as people do', () => {
  test('-h, help TOPIC and help TOPIC COMMAND print help and exit 0', async () => {
    const h = await runCli(['-h'], { cwd: scratch.dir });
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/TOPICS|COMMANDS/);
    const topic = await runCli(['help', 'plan'], { cwd: scratch.dir });
    expect(topic.code, topic.stderr).toBe(0);
    expect(topic.stdout).toMatch(/\$ factory plan COMMAND/);
    const cmd = await runCli(['help', 'plan', 'apply'], { cwd: scratch.dir });
    expect(cmd.code, cmd.stderr).toBe(0);
    expect(cmd.stdout.replace(/\s+/g, ' ')).toMatch(/Exit codes: 0 done, 1 error, 2 changes present \(diff --detailed-exitcode\), 3 some task unplaced or failed to start/);
    expect((await runCli(['plan', 'apply', '-h'], { cwd: scratch.dir })).stdout).toMatch(/USAGE\n {2}\$ factory plan apply/);
  });

  test('a mistyped command is named without the arguments after it', async () => {
    const r = await runCli(['plan', 'aply', 'x.yaml'], { cwd: scratch.dir });
    expectCleanError(r, /unknown command 'plan aply' \(did you mean 'plan apply'\?\)/);
  });
});
