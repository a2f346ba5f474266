import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateFleet } from '../../bench/generate.js';
import { SpecError } from '../../src/errors.js';
import { loadInventoryText, loadPlans, loadPlanText } from '../../src/spec/index.js';
import { parseJsonSpec } from '../../src/spec/positions.js';
import { SpecSource, type PathSeg } from '../../src/spec/source.js';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e) ? [p] : [];
  });
}

/** pathsOf lists the path of every node of a document, plus one missing key below each mapping and one index past each list. */
function pathsOf(v: unknown, path: PathSeg[] = [], out: PathSeg[][] = []): PathSeg[][] {
  out.push(path);
  if (Array.isArray(v)) {
    v.forEach((x, i) => pathsOf(x, [...path, i], out));
    out.push([...path, v.length], [...path, 'zz']);
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) pathsOf(x, [...path, k], out);
    out.push([...path, 'zz'], [...path, 'zz', 0]);
  } else {
    out.push([...path, 'zz']);
  }
  return out;
}

/** parsedInFull says whether a source had to build the yaml document. */
const parsedInFull = (src: SpecSource) => (src as unknown as { parsed?: unknown }).parsed !== undefined;

/**
 * agree checks that the fast path's positions (JSON or plain YAML) equal the yaml document's for every
 * path: the same text with a trailing comment holding a tab (outside both fast paths) is read in full.
 */
function agree(text: string, file: string): { fast: SpecSource; paths: number } {
  const fast = SpecSource.parse(text, file, 'plan');
  const slow = SpecSource.parse(`${text}\n#\t\n`, file, 'plan');
  expect(parsedInFull(fast), file).toBe(false);
  const paths = pathsOf(slow.data);
  for (const p of paths) {
    for (const atKey of [false, true]) expect(fast.positionOf(p, atKey), `${file} ${JSON.stringify(p)} atKey=${atKey}`).toEqual(slow.positionOf(p, atKey));
  }
  return { fast, paths: paths.length };
}

describe('positions of the fast paths (JSON, plain YAML)', () => {
  const docs = [...yamlFiles('fixtures'), ...yamlFiles('examples')].flatMap((f) => {
    const text = readFileSync(f, 'utf8');
    try {
      const src = SpecSource.parse(`${text}\n#\t\n`, f, 'plan');
      return [{ f, text, data: src.data }];
    } catch {
      return []; // not a readable mapping: the bad fixtures' syntax errors
    }
  });

  it('plain YAML: every node of every fixture and example is where the yaml document puts it', () => {
    let read = 0;
    for (const { f, text } of docs) {
      if (parsedInFull(SpecSource.parse(text, f, 'plan'))) continue; // outside the plain subset
      agree(text, f);
      read += 1;
    }
    expect(read).toBeGreaterThan(10);
  });

  it('JSON: the same documents written as JSON (indented, compact, spaced oddly) keep every position, without a yaml document', () => {
    for (const { f, data } of docs) {
      for (const text of [JSON.stringify(data, null, 2), JSON.stringify(data), ` \n${JSON.stringify(data, null, '\t').replace(/": /g, '" :  ')}\n\n`]) {
        const { fast } = agree(text, `${f}.json`);
        expect(parsedInFull(fast)).toBe(false);
      }
    }
    expect(docs.length).toBeGreaterThan(20);
  });

  it('the bench generator\'s block YAML and JSON fleets: every position agrees', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'factory-positions-'));
    for (const format of ['yaml', 'json'] as const) {
      const g = await generateFleet(join(dir, format), { label: 'small', agents: 60, groups: 12, perGroup: 3, constrained: 0.5, fill: 0.8, format });
      for (const f of [g.inventory, g.planFiles[0] ?? '']) {
        const { fast, paths } = agree(readFileSync(f, 'utf8'), f);
        // JSON answers every position; plain YAML leaves the inside of `command: [sleep, infinity]` to the yaml document
        expect(parsedInFull(fast)).toBe(format === 'yaml' && f !== g.inventory);
        expect(paths).toBeGreaterThan(50);
      }
      // what loading a plan asks (the plan's name, each group) needs no yaml document in either form
      const plan = SpecSource.parse(readFileSync(g.planFiles[0] ?? '', 'utf8'), 'p', 'plan');
      expect(plan.positionOf(['name'])).toEqual({ line: format === 'json' ? 2 : 1, col: format === 'json' ? 11 : 7 });
      const groups = (plan.data as { processes: unknown[] }).processes;
      for (let i = 0; i < groups.length; i++) plan.positionOf(['processes', i]);
      expect(parsedInFull(plan)).toBe(false);
    }
  });

  it('JSON that YAML reads otherwise is left to the yaml parser: duplicate keys, merge keys, __proto__, a top-level list', () => {
    expect(parseJsonSpec('{"a": 1, "b": {"c": 2, "d": "x:y"}}')).toEqual({ a: 1, b: { c: 2, d: 'x:y' } });
    expect(parseJsonSpec('{"a": 1, "a": 2}')).toBeUndefined();
    expect(parseJsonSpec('{"a": {"b": 1, "b": 1}}')).toBeUndefined();
    expect(parseJsonSpec('{"<<": {"a": 1}}')).toBeUndefined();
    expect(parseJsonSpec('{"__proto__": {"a": 1}}')).toBeUndefined();
    expect(parseJsonSpec('[1, 2]')).toBeUndefined();
    expect(parseJsonSpec('{"a": 1} # trailing comment')).toBeUndefined();
    expect(parseJsonSpec('{"k\\"ey:": "va\\"l:ue", "x": [":", "\\\\"]}')).toEqual({ 'k"ey:': 'va"l:ue', x: [':', '\\'] });
  });
});

describe('spec errors of JSON plans and inventories name file:line:col', () => {
  const message = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(SpecError);
      return (e as SpecError).message;
    }
    throw new Error('expected a SpecError');
  };

  it('a JSON plan with bad values, an unknown key and a duplicate group', () => {
    const text = [
      '{',
      '  "name": "web",',
      '  "processes": [',
      '    {"name": "api", "count": 2, "command": ["sleep", "1"], "resources": {"cpus": 0, "mem": "2Gb"}},',
      '    {',
      '      "name": "api",',
      '      "comand": ["x"],',
      '      "constraints": ["rack =! r1"]',
      '    }',
      '  ]',
      '}',
    ].join('\n');
    expect(message(() => loadPlanText(text, 'web.json'))).toBe(
      [
        'web.json:4:82: processes[0].resources.cpus: must be greater than 0 (got 0)',
        "web.json:4:92: processes[0].resources.mem: unknown unit 'Gb' in '2Gb' (use Ki, Mi, Gi, Ti or K, M, G, T)",
        "web.json:5:5: processes[1].command: missing required key 'command'",
        "web.json:6:15: processes[1].name: duplicate group name 'api' (first defined at 4:5)",
        "web.json:7:7: processes[1].comand: unknown key 'comand' (did you mean 'command'?)",
        "web.json:8:23: processes[1].constraints[0]: invalid constraint 'rack =! r1': unknown operator '=!' (use ==, !=, <, <=, >, >=, in, not in or ~)",
      ].join('\n'),
    );
  });

  it('a JSON inventory with an unknown key, a bad size and a duplicate agent', () => {
    const inv = {
      idcs: [{ name: 'bj1', clusters: [{ name: 'c1', agents: [
        { name: 'h1', ssh: { hots: '10.0.0.1' }, resources: { cpus: 8, mem: '16Gb' } },
        { name: 'h1', local: true },
      ] }] }],
    };
    const text = JSON.stringify(inv, null, 2);
    const err = message(() => loadInventoryText(text, 'inv.json'));
    expect(err).toBe(
      [
        "inv.json:11:22: idcs[0].clusters[0].agents[0].ssh.host: missing required key 'host'",
        "inv.json:12:17: idcs[0].clusters[0].agents[0].ssh.hots: unknown key 'hots' (did you mean 'host'?)",
        "inv.json:16:24: idcs[0].clusters[0].agents[0].resources.mem: unknown unit 'Gb' in '16Gb' (use Ki, Mi, Gi, Ti or K, M, G, T)",
        "inv.json:20:23: idcs[0].clusters[0].agents[1].name: duplicate agent name 'h1' (first defined at 9:13)",
      ].join('\n'),
    );
  });

  it('a JSON plan with a duplicate key is read as YAML, which names the key', () => {
    const text = '{\n  "name": "web",\n  "name": "web2",\n  "processes": []\n}\n';
    expect(message(() => loadPlanText(text, 'dup.json'))).toBe("dup.json:3:3: duplicate key 'name'");
  });

  it('JSON plan files load like their YAML twins (groups in file order, positions in the file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'factory-json-plan-'));
    const yaml = 'name: web\nprocesses:\n  - name: b\n    command: [sleep, "1"]\n  - name: a\n    command: [sleep, "1"]\n    count: 2\n';
    const json = JSON.stringify({ name: 'web-json', processes: [{ name: 'b', command: ['sleep', '1'] }, { name: 'a', command: ['sleep', '1'], count: 2 }] }, null, 2);
    writeFileSync(join(dir, 'web.yaml'), yaml);
    writeFileSync(join(dir, 'web.json'), json);
    const [fromYaml, fromJson] = await loadPlans([join(dir, 'web.yaml'), join(dir, 'web.json')]);
    expect(fromJson?.groups.map((g) => [g.name, g.count, g.line, g.col])).toEqual([['b', 1, 4, 5], ['a', 2, 11, 5]]);
    expect(fromYaml?.groups.map((g) => ({ ...g, line: 0, col: 0, plan: '' }))).toEqual(fromJson?.groups.map((g) => ({ ...g, line: 0, col: 0, plan: '' })));
  });
});
