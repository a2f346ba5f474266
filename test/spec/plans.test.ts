import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { loadPlanFile, loadPlans, loadPlanText, type PlanSpec } from '../../src/spec/index.js';

const fixtures = relative(process.cwd(), fileURLToPath(new URL('../../fixtures/plans/', import.meta.url)));
const bad = (f: string) => join(fixtures, 'bad', f);
const good = (f: string) => join(fixtures, 'good', f);
const Mi = 1024 * 1024;
const Gi = 1024 * Mi;

async function specError(p: Promise<unknown> | (() => unknown)): Promise<SpecError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return e as SpecError;
  }
  throw new Error('expected a SpecError');
}

// Each bad fixture and every line its SpecError carries (`line:col: path: message`, file prefix added).
const BAD: Record<string, string[]> = {
  'empty.yaml': ["1:1: empty plan: expected a mapping with at least 'name'"],
  'only-comments.yaml': ["1:1: empty plan: expected a mapping with at least 'name'"],
  'malformed.yaml': ['5:1: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  'binary.yaml': ['1:1: not a text file (NUL byte); expected a YAML plan'],
  'invalid-utf8.yaml': ['1:1: not a text file (invalid UTF-8); expected a YAML plan'],
  'alias-bomb.yaml': ['1:1: refusing to expand YAML aliases: more than 100 expansions (an alias bomb?)'],
  'duplicate-key.yaml': ["7:5: duplicate key 'count'"],
  'multi-doc.yaml': ['2:1: a plan file holds one YAML document; found more than one (---)'],
  'top-list.yaml': ['1:1: expected a mapping at the top level of the plan, got a list'],
  'top-scalar.yaml': ['1:1: expected a mapping at the top level of the plan, got a string'],
  'unknown-key.yaml': [
    "3:1: proceses: unknown key 'proceses' (did you mean 'processes'?)",
    "7:5: processes[0].resouces: unknown key 'resouces' (did you mean 'resources'?)",
    "8:5: processes[0].zzzzqqq: unknown key 'zzzzqqq'",
  ],
  'command-string.yaml': [
    '5:14: processes[0].command: command must be a list (argv); it is never run through a shell — use ["sh","-c","..."] explicitly',
  ],
  'command-items.yaml': [
    '5:14: processes[0].command: command must not be empty',
    '7:22: processes[1].command[1]: expected a string, got a number (5); quote it',
    '7:25: processes[1].command[2]: empty argument in command',
  ],
  'count-absurd.yaml': [
    '6:12: processes[0].count: must be at most 10000 (got 1000000000)',
    '9:12: processes[1].count: must be at least 1 (got 0)',
    '12:12: processes[2].count: expected an integer, got a number (1.5)',
  ],
  'bad-units.yaml': [
    '6:23: processes[0].resources.cpus: must be greater than 0 (got 0)',
    "6:31: processes[0].resources.mem: unknown unit 'Gb' in '2Gb' (use Ki, Mi, Gi, Ti or K, M, G, T)",
    '9:23: processes[1].resources.cpus: must be at most 4096 (got 5000)',
    "9:34: processes[1].resources.mem: size must not be negative (got '-1Gi')",
    "9:46: processes[1].resources.disk: size must be greater than zero (got '0')",
    "12:31: processes[2].resources.mem: size '99999999Pi' is too large (limit 2^53 bytes, about 8Pi)",
    '12:49: processes[2].resources.gpus: expected an integer, got a number (1.5)',
    "13:16: processes[2].stopGrace: invalid duration '10 parsecs' (use e.g. 500ms, 10s, 2m, 1h or 1h30m; a plain number is seconds)",
  ],
  'nan-inf.yaml': [
    '6:23: processes[0].resources.cpus: must be a finite number (got NaN)',
    '6:35: processes[0].resources.gpus: must be a finite number (got -Infinity)',
    '9:23: processes[1].resources.cpus: must be a finite number (got Infinity)',
  ],
  'bad-constraints.yaml': [
    "7:9: processes[0].constraints[0]: invalid constraint 'rack = r9': unknown operator '=' (use ==, !=, <, <=, >, >=, in, not in or ~)",
    "8:9: processes[0].constraints[1]: invalid constraint 'zone in a, b': expected a list after 'in', e.g. (a, b) or [a, b]",
    "9:9: processes[0].constraints[2]: invalid constraint 'host ~ (unclosed': regex does not compile: Invalid regular expression: /(unclosed/: Unterminated group",
    "10:9: processes[0].constraints[3]: invalid constraint 'rack': missing operator and value (use ==, !=, <, <=, >, >=, in, not in or ~)",
    '11:9: processes[0].constraints[4]: empty constraint (expected e.g. "rack != r9")',
  ],
  'bad-names.yaml': [
    "2:7: name: invalid name 'My_Plan': use lowercase letters, digits and '-', starting with a letter or digit",
    "3:10: project: invalid name 'ACME': use lowercase letters, digits and '-', starting with a letter or digit",
    "5:11: processes[0].name: invalid name '-web': use lowercase letters, digits and '-', starting with a letter or digit",
    `7:11: processes[1].name: name '${'a'.repeat(70)}' is longer than 63 characters`,
  ],
  'duplicate-group.yaml': [
    "7:11: containers[0].name: duplicate group name 'web' (first defined at 4:5)",
    "10:11: vms[0].name: duplicate group name 'web' (first defined at 4:5)",
  ],
  'vm-shapes.yaml': [
    '6:5: vms[0].count: use either count + resources or total + shapes, not both',
    '11:5: vms[1].total: total needs shapes: the VM sizes to split it into',
    '12:5: vms[2]: vms need resources with cpus and mem (with count), or total + shapes',
    "17:14: vms[3].shapes[0].mem: missing required key 'mem'",
  ],
  'missing-name.yaml': [
    "2:1: name: missing required key 'name'",
    "4:5: processes[0].name: missing required key 'name'",
  ],
  'bad-env.yaml': [
    "8:7: processes[0].env.1BAD: invalid environment variable name '1BAD' (use [A-Za-z_][A-Za-z0-9_]*)",
    '9:15: processes[0].env.NESTED: expected a string value',
  ],
  'ports.yaml': [
    '6:29: containers[0].resources.ports[1]: duplicate port 80',
    '6:33: containers[0].resources.ports[2]: must be at most 65535 (got 70000)',
  ],
  'health.yaml': [
    '6:13: containers[0].health: health http and tcp checks need a port',
    "6:20: containers[0].health.http: http must be a path starting with '/', e.g. /healthz",
    '9:13: containers[1].health: health http and tcp checks need a port',
    "14:13: vms[0].health: a VM's tcp or http health check needs a subnet: the agent reaches the VM through its NIC (or use a command check)",
  ],
  'jobs.yaml': [
    `5:15: jobs[0].schedule: invalid schedule 'every night': 2 field(s); expected 5 cron fields ("0 2 * * *"), 6 with seconds first, a macro (@daily) or an ISO 8601 interval (R/2026-12-01T02:00:00Z/PT6H)`,
    '6:14: jobs[0].command: command must be a list (argv); it is never run through a shell — use ["sh","-c","..."] explicitly',
  ],
  'jobs-refs.yaml': [
    "7:11: jobs[0].name: job name 'web' is also a group of this plan: give the job another name",
    "10:5: jobs[1]: job 'nothing' needs a schedule (cron or ISO 8601 interval) or after: [jobs it follows]",
    '14:12: jobs[2].after: use either schedule or after, not both (a job run after others has no schedule of its own)',
    "17:13: jobs[3].after[0]: no job 'ghost' in this plan",
    "17:20: jobs[3].after[1]: job 'lost' cannot run after itself",
    '20:12: jobs[4].after: jobs run after each other in a cycle: a → b → a',
    "25:5: jobs[6]: job 'idle' needs a command (a process), or an image (a container)",
  ],
  'jobs-values.yaml': [
    "6:15: jobs[0].timeZone: unknown time zone 'Mars/Base' (expected an IANA name such as UTC or Europe/Berlin)",
    `9:15: jobs[1].schedule: invalid period 'P1X' in 'R/2026-12-01T00:00:00Z/P1X': the input "P1X" can't be parsed as ISO 8601`,
    "14:18: jobs[2].concurrency: must be one of allow, forbid, replace (got 'sometimes')",
    "15:14: jobs[2].catchUp: must be one of none, latest, all (got 'everything')",
    '16:14: jobs[2].retries: must be at least 0 (got -1)',
  ],
  'update.yaml': [
    '6:27: processes[0].update.maxParallel: must be at least 1 (got 0)',
    '6:40: processes[0].update.maxSurge: must be at least 0 (got -1)',
    '6:52: processes[0].update.canary: expected an integer, got a number (1.5)',
    "6:69: processes[0].update.autoRevert: expected true or false, got a string ('yes')",
    "9:30: processes[1].update.minHealthyTime: invalid duration 'soon' (use e.g. 500ms, 10s, 2m, 1h or 1h30m; a plain number is seconds)",
    "9:36: processes[1].update.maxParalel: unknown key 'maxParalel' (did you mean 'maxParallel'?)",
  ],
  'update-layers.yaml': [
    '3:47: update.healthyDeadline: healthyDeadline (30s) must be longer than minHealthyTime (1m): no task could count healthy in time',
    '7:53: processes[0].update.progressDeadline: progressDeadline (90s) must be longer than healthyDeadline (2m), or 0 for none',
    '10:27: processes[1].update.autoPromote: autoPromote needs canary: 1 or more (there is nothing to promote)',
  ],
  'restart-backoff.yaml': [
    "6:31: processes[0].restartBackoff.initial: duration must not be negative (got '-1')",
    "6:40: processes[0].restartBackoff.max: invalid duration '-5s' (use e.g. 500ms, 10s, 2m, 1h or 1h30m; a plain number is seconds)",
    '9:30: processes[1].restartBackoff.factor: factor must be at least 1: each wait is the last one times factor (got 0.5)',
    '12:41: processes[2].restartBackoff.max: max (2s) must not be less than initial (10s)',
    "15:22: processes[3].restartBackoff.initail: unknown key 'initail' (did you mean 'initial'?)",
    '19:16: processes[4].restartBackoff.initial: max (5m, the default) must not be less than initial (10m)',
  ],
  'not-mapping-group.yaml': [
    '3:12: processes: expected a list, got a mapping',
    "5:5: containers[0]: expected a mapping, got a string ('just-a-string')",
  ],
};

describe('bad plans', () => {
  it.each(Object.entries(BAD))('%s', async (name, lines) => {
    const file = bad(name);
    const err = await specError(loadPlanFile(file));
    expect(err.message).toBe(lines.map((l) => `${file}:${l}`).join('\n'));
    expect(err.message).not.toMatch(/\n\s+at /); // never a stack trace
    for (const i of err.issues) {
      expect(i.file).toBe(file);
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.col).toBeGreaterThanOrEqual(1);
    }
  });

  it('has an expectation for every bad fixture', async () => {
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(fixtures, 'bad')).sort()).toEqual(Object.keys(BAD).sort());
  });

  it('refuses files larger than 4 MiB without parsing them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-big-'));
    const file = join(dir, 'big.yaml');
    writeFileSync(file, `name: big\n#${'x'.repeat(4 * 1024 * 1024)}\n`);
    const err = await specError(loadPlanFile(file));
    expect(err.message).toMatch(/big\.yaml:1:1: file is larger than 4 MiB/);
    expect(() => loadPlanText(`name: big\n#${'x'.repeat(4 * 1024 * 1024)}\n`, 'big.yaml')).toThrow(/larger than 4 MiB/);
  });

  it('reports a missing file as a SpecError', async () => {
    const err = await specError(loadPlanFile('/nonexistent/plan.yaml'));
    expect(err.message).toBe('/nonexistent/plan.yaml:1:1: cannot read plan: no such file');
  });

  it('loadPlanText rejects NUL bytes', () => {
    expect(() => loadPlanText('name: x\n\u0000', 'x.yaml')).toThrow('x.yaml:1:1: not a text file');
  });
});

describe('good plans', () => {
  it('minimal: defaults filled in (cpus 0.1, mem 64Mi, stopGrace 10s, restart always, restartBackoff 1s × 2 up to 5m)', async () => {
    const file = good('minimal.yaml');
    const plan = await loadPlanFile(file);
    expect(plan).toEqual<PlanSpec>({
      file,
      name: 'minimal',
      project: 'default',
      warnings: [],
      groups: [
        {
          name: 'sleeper',
          kind: 'process',
          driver: 'process',
          count: 1,
          everyAgent: false,
          resources: { cpus: 0.1, mem: 64 * Mi, disk: 0, gpus: 0, scalars: {}, ports: [] },
          constraints: [],
          strategy: 'binpack',
          command: ['sleep', 'infinity'],
          env: {},
          stopGraceMs: 10_000,
          restart: 'always',
          restartBackoff: { initialMs: 1000, factor: 2, maxMs: 300_000 },
          line: 4,
          col: 5,
        },
      ],
    });
  });

  it('render-farm: every section, normalized', async () => {
    const file = good('render-farm.yaml');
    const plan = await loadPlanFile(file);
    expect(plan.name).toBe('render-farm');
    expect(plan.project).toBe('acme');
    expect(plan.placement).toEqual({ idcs: ['bj1', 'sh2'] });
    expect(plan.groups.map((g) => [g.name, g.kind, g.driver, g.line, g.col])).toEqual([
      ['render', 'vm', 'libvirt', 6, 5],
      ['build', 'vm', 'libvirt', 13, 5],
      ['web', 'container', 'docker', 18, 5],
      ['ticker', 'process', 'process', 27, 5],
    ]);
    const [render, build, web, ticker] = plan.groups;
    expect(render).toMatchObject({
      count: 0,
      image: 'win2019-render',
      total: { cpus: 200 },
      shapes: [
        { cpus: 48, mem: 96 * Gi, disk: 0, gpus: 0 },
        { cpus: 8, mem: 16 * Gi, disk: 100 * Gi, gpus: 0 },
      ],
      subnet: 'render-net',
      volumes: ['scratch'],
      constraints: [
        { attribute: 'cpu_model', op: '==', value: 'Xeon-6248', source: 'cpu_model == Xeon-6248' },
        { attribute: 'rack', op: '!=', value: 'r9', source: 'rack != r9' },
      ],
    });
    expect(build).toMatchObject({ count: 2, resources: { cpus: 4, mem: 8 * Gi, disk: 50 * Gi, gpus: 0, ports: [], scalars: {} } });
    expect(web).toMatchObject({
      count: 3,
      image: 'nginx:1.25',
      maxPerAgent: 1,
      strategy: 'spread',
      resources: { cpus: 0.5, mem: 256 * Mi, ports: [80] },
      health: { http: '/healthz', port: 80, intervalMs: 5000 },
      env: { PORT: '80', MODE: 'prod' },
    });
    expect(web?.command).toBeUndefined();
    expect(ticker).toMatchObject({
      count: 2,
      restart: 'on-failure',
      stopGraceMs: 90_000,
      workingDir: '/tmp',
      resources: { cpus: 0.1, mem: 32 * Mi, scalars: { ssd: Gi } },
    });
    expect(ticker?.constraints.map((c) => c.op)).toEqual(['in', '>=', '~']);
    expect(plan.warnings).toEqual([]);
    expect(plan.jobs).toEqual([
      {
        name: 'nightly',
        schedule: '0 2 * * *',
        timeZone: 'UTC',
        driver: 'process',
        command: ['sh', '-c', 'echo done'],
        env: {},
        resources: { cpus: 1, mem: Gi, disk: 0, gpus: 0, scalars: {}, ports: [] },
        constraints: [],
        concurrency: 'allow',
        retries: 0,
        backoffMs: 10_000,
        backoffMaxMs: 300_000,
        history: { succeeded: 3, failed: 5 },
        suspend: false,
        catchUp: 'none',
        catchUpMax: 10,
        stopGraceMs: 10_000,
        line: 37,
        col: 5,
      },
    ]);
  });

  it('anchors and merge keys', async () => {
    const plan = await loadPlanFile(good('anchors.yaml'));
    expect(plan.placement).toEqual({ cluster: 'bj1-a' });
    expect(plan.groups.map((g) => g.name)).toEqual(['api', 'api-canary']);
    expect(plan.groups[1]).toMatchObject({ everyAgent: true, command: ['httpd', '-f'], resources: { cpus: 0.25, mem: 128 * Mi } });
  });

  it('restartBackoff: given keys win, the others keep their defaults; initial 0 turns the backoff off', () => {
    const plan = loadPlanText(
      `name: rb
processes:
  - {name: a, command: ["false"], restartBackoff: {initial: 500ms, factor: 3, max: 1m}}
  - {name: b, command: ["false"], restartBackoff: {max: 8s}}
  - {name: c, command: ["false"], restartBackoff: {initial: 0, factor: 1}}
`,
      'rb.yaml',
    );
    expect(plan.groups.map((g) => g.restartBackoff)).toEqual([
      { initialMs: 500, factor: 3, maxMs: 60_000 },
      { initialMs: 1000, factor: 2, maxMs: 8000 },
      { initialMs: 0, factor: 1, maxMs: 300_000 },
    ]);
  });

  it('empty sections are allowed', async () => {
    const plan = await loadPlanFile(good('empty-sections.yaml'));
    expect(plan.groups).toEqual([]);
  });

  it('examples/quickstart.yaml is valid and small', async () => {
    const plan = await loadPlanFile('examples/quickstart.yaml');
    expect(plan).toMatchObject({ name: 'quickstart', project: 'demo' });
    expect(plan.groups.map((g) => [g.name, g.count])).toEqual([
      ['ticker', 2],
      ['echo-env', 1],
    ]);
    for (const g of plan.groups) {
      expect(g.resources.cpus).toBeLessThanOrEqual(0.1);
      expect(g.resources.mem).toBeLessThanOrEqual(32 * Mi);
      expect(g.command?.[0]).toBe('sh');
    }
  });
});

describe('loadPlans', () => {
  it('expands folders (sorted *.yaml / *.yml) and keeps files in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-plans-'));
    writeFileSync(join(dir, 'b.yml'), 'name: b\n');
    writeFileSync(join(dir, 'a.yaml'), 'name: a\n');
    writeFileSync(join(dir, 'notes.txt'), 'not a plan');
    mkdirSync(join(dir, 'sub.yaml'));
    const plans = await loadPlans([dir, good('minimal.yaml')]);
    expect(plans.map((p) => p.name)).toEqual(['a', 'b', 'minimal']);
    expect(plans[0]?.file).toBe(join(dir, 'a.yaml'));
  });

  it('reports every file’s issues at once, and duplicate plan names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-plans-'));
    writeFileSync(join(dir, 'a.yaml'), 'name: same\n');
    writeFileSync(join(dir, 'b.yaml'), '# two\nname: same\n');
    writeFileSync(join(dir, 'c.yaml'), 'name: c\nbogus: 1\n');
    const err = await specError(loadPlans([dir]));
    expect(err.message).toBe(
      [
        `${join(dir, 'c.yaml')}:2:1: bogus: unknown key 'bogus'`,
        `${join(dir, 'b.yaml')}:2:7: name: duplicate plan name 'same' (also in ${join(dir, 'a.yaml')})`,
      ].join('\n'),
    );
  });

  it('an empty folder is an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-plans-'));
    await expect(loadPlans([dir])).rejects.toThrow('folder holds no *.yaml or *.yml plan files');
  });
});
