import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import {
  embeddedInventory,
  loadInventoryFile,
  loadInventoryText,
  resolveInventory,
  type InventorySpec,
} from '../../src/spec/index.js';

const fixtures = relative(process.cwd(), fileURLToPath(new URL('../../fixtures/inventories/', import.meta.url)));
const Gi = 1024 ** 3;

describe('inventory', () => {
  it('loads two IDCs with ssh and local agents, defaults filled in', async () => {
    const file = join(fixtures, 'good', 'two-idcs.yaml');
    const inv = await loadInventoryFile(file);
    expect(inv).toEqual<InventorySpec>({
      file,
      idcs: [
        { name: 'bj1', clusters: ['bj1-a'] },
        { name: 'sh2', clusters: ['sh2-a'] },
      ],
      agents: [
        {
          name: 'h1',
          idc: 'bj1',
          cluster: 'bj1-a',
          transport: { kind: 'ssh', host: '127.0.1.1', port: 2222, user: 'root', identityFile: '~/.ssh/id_ed25519' },
          resources: { cpus: 48, mem: 192 * Gi, disk: 2048 * Gi, scalars: { ssd: 800 * Gi } },
          attributes: { rack: 'r1', cpu_model: 'Xeon-6248', gen: '3', hyperthreading: 'true' },
          drivers: ['process', 'docker'],
        },
        { name: 'h2', idc: 'bj1', cluster: 'bj1-a', transport: { kind: 'ssh', host: '127.0.2.1' }, resources: {}, attributes: {} },
        {
          name: 'me',
          idc: 'sh2',
          cluster: 'sh2-a',
          transport: { kind: 'local' },
          resources: {},
          attributes: {},
          workDir: '/var/lib/factory',
        },
      ],
      projects: {
        acme: { weight: 2, quota: { cpus: 400, mem: 1024 * Gi }, clusters: ['bj1-a'] },
        other: { weight: 1 },
      },
    });
  });

  it('reports every problem with its position', async () => {
    const file = join(fixtures, 'bad', 'problems.yaml');
    const err = await loadInventoryFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    const a = 'idcs[0].clusters[0].agents';
    expect((err as SpecError).message).toBe(
      [
        `7:13: ${a}[0]: agent needs either ssh: {host: ...} or local: true`,
        `8:45: ${a}[0].resources.gpu: unknown resource 'gpu' (did you mean 'gpus'?)`,
        `9:19: ${a}[1].name: duplicate agent name 'h1' (first defined at 7:13)`,
        `10:18: ${a}[1].ssh.host: missing required key 'host'`,
        `10:19: ${a}[1].ssh.hots: unknown key 'hots' (did you mean 'host'?)`,
        `13:13: ${a}[2].local: agent has both ssh and local; choose one`,
        `14:32: ${a}[2].attributes.rack: attribute values must be strings, numbers or booleans`,
        "15:11: idcs[1].name: duplicate idc name 'bj1' (first defined at 3:5)",
        "17:15: idcs[1].clusters[0].name: duplicate cluster name 'bj1-a' (first defined at 5:9)",
        '20:18: projects.acme.weight: must be greater than 0 (got 0)',
        "20:32: projects.acme.clusters[0]: unknown cluster 'nowhere' (not in idcs)",
        "21:3: projects.Bad_Project: invalid name 'Bad_Project': use lowercase letters, digits and '-', starting with a letter or digit",
      ]
        .map((l) => `${file}:${l}`)
        .join('\n'),
    );
  });

  it('an empty inventory is an error', async () => {
    await expect(loadInventoryFile(join(fixtures, 'bad', 'empty.yaml'))).rejects.toThrow(
      "empty.yaml:1:1: empty inventory: expected a mapping with 'idcs'",
    );
  });

  it('needs at least one idc', () => {
    expect(() => loadInventoryText('idcs: []\n', 'inv.yaml')).toThrow('inv.yaml:1:7: idcs: must not be empty');
  });

  it('examples/inventory.example.yaml is valid', async () => {
    const inv = await loadInventoryFile('examples/inventory.example.yaml');
    expect(inv.idcs.map((i) => i.name)).toEqual(['bj1', 'sh2']);
    expect(inv.agents.every((a) => a.transport.kind === 'ssh')).toBe(true);
  });
});

describe('embeddedInventory / resolveInventory', () => {
  const cwd = process.cwd();
  afterEach(() => process.chdir(cwd));

  it('embedded default: this machine as agent local', () => {
    expect(embeddedInventory()).toEqual<InventorySpec>({
      file: '(embedded default)',
      agents: [{ name: 'local', idc: 'local', cluster: 'local', transport: { kind: 'local' }, resources: {}, attributes: {} }],
      idcs: [{ name: 'local', clusters: ['local'] }],
      projects: {},
    });
  });

  it('flag → that file; missing flag file → error', async () => {
    const file = join(fixtures, 'good', 'two-idcs.yaml');
    expect((await resolveInventory(file)).agents).toHaveLength(3);
    await expect(resolveInventory('/nonexistent/inventory.yaml')).rejects.toThrow(
      '/nonexistent/inventory.yaml:1:1: cannot read inventory: no such file',
    );
  });

  it('./inventory.yaml when it exists, else the embedded default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-inv-'));
    process.chdir(dir);
    expect((await resolveInventory()).file).toBe('(embedded default)');
    writeFileSync(join(dir, 'inventory.yaml'), 'idcs: [{name: x, clusters: [{name: x-a, agents: [{name: a, local: true}]}]}]\n');
    const inv = await resolveInventory();
    expect(inv.file).toBe('./inventory.yaml');
    expect(inv.agents.map((a) => [a.name, a.idc, a.cluster])).toEqual([['a', 'x', 'x-a']]);
  });
});

describe('paths in an inventory', () => {
  it('are relative to the inventory file, except ~ and absolute ones and an SSH agent workDir (on the agent)', () => {
    const inv = loadInventoryText(
      `settings: {knownHostsFile: kh/known_hosts}
idcs:
  - name: dc
    clusters:
      - name: c
        agents:
          - {name: l1, local: true, workDir: work/l1}
          - {name: l2, local: true, workDir: /abs/l2}
          - {name: s1, workDir: agents/s1, ssh: {host: 127.0.0.1, identityFile: keys/id, knownHostsFile: ~/kh}}
`,
      '/etc/factory/inventory.yaml',
    );
    const by = Object.fromEntries(inv.agents.map((a) => [a.name, a]));
    expect(inv.settings?.knownHostsFile).toBe('/etc/factory/kh/known_hosts');
    expect(by.l1!.workDir).toBe('/etc/factory/work/l1');
    expect(by.l2!.workDir).toBe('/abs/l2');
    expect(by.s1!.workDir).toBe('agents/s1');
    expect(by.s1!.transport).toMatchObject({ identityFile: '/etc/factory/keys/id', knownHostsFile: '~/kh' });
  });
});
