/**
 * Loading inventories: IDCs → clusters → agents, and projects. Same file safety and issue positions as
 * plans (SpecSource); plus the embedded default (this machine as agent `local`) and `--inventory`
 * resolution.
 */
import nodePath from 'node:path';
import { access } from 'node:fs/promises';
import * as z from 'zod';
import type { ResourceVector } from '../scheduler/types.js';
import type { AgentSpec, InventorySettings, InventorySpec, ProjectSpec } from './model.js';
import { readSpecFile } from './read.js';
import { checkResourceKeys, isObj, listOf, type Obj } from './raw-checks.js';
import { SpecSource } from './source.js';
import { zodErrorMap } from './zod-messages.js';
import { checkUpdateLayers, updateSettingsOf } from './update.js';
import { AGENT_RESOURCE_KEYS, inventorySchema, type RawInventory } from './schema.js';

/** EMBEDDED_INVENTORY_FILE is the `file` of the embedded default inventory. */
export const EMBEDDED_INVENTORY_FILE = '(embedded default)';
/** DEFAULT_INVENTORY_PATH is where resolveInventory looks when no --inventory is given. */
export const DEFAULT_INVENTORY_PATH = './inventory.yaml';

/** checkInventoryRaw runs the checks zod cannot express: unique names, ssh xor local, known clusters. */
function checkInventoryRaw(src: SpecSource): void {
  const data = src.data as Obj;
  // First definitions are remembered by path; a position is computed only for a duplicate's message
  // (positions need the full YAML document, which the fast path does not build).
  const idcs = new Map<string, (string | number)[]>();
  const clusters = new Map<string, (string | number)[]>();
  const agents = new Map<string, (string | number)[]>();
  const dup = (seen: Map<string, (string | number)[]>, what: string, name: unknown, path: (string | number)[]) => {
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first) {
      const f = src.positionOf(first);
      src.issue([...path, 'name'], `duplicate ${what} name '${name}' (first defined at ${f.line}:${f.col})`);
    } else seen.set(name, path);
  };
  listOf(data.idcs).forEach((idc, i) => {
    if (!isObj(idc)) return;
    dup(idcs, 'idc', idc.name, ['idcs', i]);
    listOf(idc.clusters).forEach((cl, j) => {
      if (!isObj(cl)) return;
      dup(clusters, 'cluster', cl.name, ['idcs', i, 'clusters', j]);
      listOf(cl.agents).forEach((a, k) => {
        if (!isObj(a)) return;
        const path = ['idcs', i, 'clusters', j, 'agents', k];
        dup(agents, 'agent', a.name, path);
        const hasSsh = a.ssh !== undefined && a.ssh !== null;
        const hasLocal = a.local !== undefined;
        if (!hasSsh && !hasLocal) src.issue(path, "agent needs either ssh: {host: ...} or local: true");
        if (hasSsh && hasLocal) src.issue([...path, 'local'], 'agent has both ssh and local; choose one', true);
        checkResourceKeys(src, [...path, 'resources'], a.resources, AGENT_RESOURCE_KEYS);
      });
    });
  });
  const projects = data.projects;
  if (isObj(projects)) {
    for (const [name, p] of Object.entries(projects)) {
      if (!isObj(p)) continue;
      checkResourceKeys(src, ['projects', name, 'quota'], p.quota, AGENT_RESOURCE_KEYS);
      listOf(p.clusters).forEach((c, i) => {
        if (typeof c === 'string' && !clusters.has(c)) {
          src.issue(['projects', name, 'clusters', i], `unknown cluster '${c}' (not in idcs)`);
        }
      });
    }
  }
}

function resourceVector(r: Record<string, unknown> | undefined): Partial<ResourceVector> {
  if (!r) return {};
  const out: Partial<ResourceVector> = {};
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(r)) {
    if (typeof v !== 'number') continue;
    if (k === 'cpus' || k === 'mem' || k === 'disk' || k === 'gpus') out[k] = v;
    else scalars[k] = v;
  }
  if (Object.keys(scalars).length > 0) out.scalars = scalars;
  return out;
}

/**
 * relativeTo makes a path of the inventory absolute against the inventory file's folder, as paths in
 * a configuration file read (`~` and absolute paths are left as they are): the same inventory then
 * means the same files whichever directory factory runs in, a control host's supervision included.
 */
function relativeTo(file: string): (p: string) => string {
  const dir = nodePath.dirname(nodePath.resolve(file));
  return (p) => (p.startsWith('~') || nodePath.isAbsolute(p) ? p : nodePath.resolve(dir, p));
}

function buildInventory(raw: RawInventory, file: string): InventorySpec {
  const rel = relativeTo(file);
  const agents: AgentSpec[] = [];
  const idcs: InventorySpec['idcs'] = [];
  for (const idc of raw.idcs) {
    idcs.push({ name: idc.name, clusters: idc.clusters.map((c) => c.name) });
    for (const cl of idc.clusters) {
      for (const a of cl.agents) {
        const transport: AgentSpec['transport'] = a.ssh
          ? {
              kind: 'ssh',
              host: a.ssh.host,
              ...(a.ssh.port !== undefined ? { port: a.ssh.port } : {}),
              ...(a.ssh.user !== undefined ? { user: a.ssh.user } : {}),
              ...(a.ssh.identityFile !== undefined ? { identityFile: rel(a.ssh.identityFile) } : {}),
              ...(a.ssh.nodePath !== undefined ? { nodePath: a.ssh.nodePath } : {}),
              ...(a.ssh.knownHostsFile !== undefined ? { knownHostsFile: rel(a.ssh.knownHostsFile) } : {}),
              ...(a.ssh.hostKeyPolicy !== undefined ? { hostKeyPolicy: a.ssh.hostKeyPolicy } : {}),
            }
          : { kind: 'local' };
        const agent: AgentSpec = {
          name: a.name,
          idc: idc.name,
          cluster: cl.name,
          transport,
          resources: resourceVector(a.resources as Record<string, unknown> | undefined),
          attributes: a.attributes ?? {},
        };
        if (a.drivers) agent.drivers = a.drivers;
        // a local agent's workDir is on this machine; an SSH agent's is on the agent (relative to its user's home)
        if (a.workDir !== undefined) agent.workDir = a.ssh ? a.workDir : rel(a.workDir);
        agents.push(agent);
      }
    }
  }
  const projects: Record<string, ProjectSpec> = {};
  for (const [name, p] of Object.entries(raw.projects ?? {})) {
    const spec: ProjectSpec = { weight: p.weight };
    if (p.quota) spec.quota = resourceVector(p.quota as Record<string, unknown>);
    if (p.clusters) spec.clusters = p.clusters;
    projects[name] = spec;
  }
  const inv: InventorySpec = { file, agents, idcs, projects };
  const st = raw.settings;
  if (st) {
    const settings: InventorySettings = {};
    if (st.connectTimeout !== undefined) settings.connectTimeoutMs = st.connectTimeout;
    if (st.callTimeout !== undefined) settings.callTimeoutMs = st.callTimeout;
    if (st.heartbeat !== undefined) settings.heartbeatMs = st.heartbeat;
    if (st.lostAfter !== undefined) settings.lostAfter = st.lostAfter;
    if (st.concurrency !== undefined) settings.concurrency = st.concurrency;
    if (st.knownHostsFile !== undefined) settings.knownHostsFile = rel(st.knownHostsFile);
    if (st.hostKeyPolicy !== undefined) settings.hostKeyPolicy = st.hostKeyPolicy;
    if (st.update) settings.update = updateSettingsOf(st.update);
    inv.settings = settings;
  }
  return inv;
}

// The inventory schema compiled by zod (z.compile): a valid inventory is checked by generated code
// (10k agents: ~180 → ~140 ms CPU here, the compile included); an invalid one falls back to the
// runtime parser, which reports the same issues as before. Compiled on first use.
let compiledInventorySchema: typeof inventorySchema | undefined;

/** loadInventoryText validates inventory YAML text; throws SpecError with every issue of the file. */
export function loadInventoryText(text: string, file: string): InventorySpec {
  const src = SpecSource.parse(text, file, 'inventory');
  compiledInventorySchema ??= z.compile(inventorySchema);
  const result = compiledInventorySchema.safeParse(src.data, { error: zodErrorMap });
  if (!result.success) src.addZodIssues(result.error.issues);
  checkInventoryRaw(src);
  const update = result.success ? result.data.settings?.update : undefined;
  if (update) checkUpdateLayers(src, [{ at: ['settings', 'update'], settings: updateSettingsOf(update) }]);
  src.throwIfIssues();
  return buildInventory(result.data as RawInventory, file);
}

/** loadInventoryFile reads and validates one inventory file. */
export async function loadInventoryFile(path: string): Promise<InventorySpec> {
  return loadInventoryText(await readSpecFile(path, 'inventory'), path);
}

/**
 * embeddedInventory is the default when no inventory file exists: this machine as the only agent
 * (`local` in IDC `local`, cluster `local`, local transport). Resources are discovered at run time.
 */
export function embeddedInventory(): InventorySpec {
  return {
    file: EMBEDDED_INVENTORY_FILE,
    agents: [
      { name: 'local', idc: 'local', cluster: 'local', transport: { kind: 'local' }, resources: {}, attributes: {} },
    ],
    idcs: [{ name: 'local', clusters: ['local'] }],
    projects: {},
  };
}

/**
 * resolveInventory picks the inventory: the `--inventory` file when given (missing = error), else
 * ./inventory.yaml when it exists, else the embedded default.
 */
export async function resolveInventory(flag?: string): Promise<InventorySpec> {
  if (flag !== undefined && flag !== '') return loadInventoryFile(flag);
  try {
    await access(DEFAULT_INVENTORY_PATH);
  } catch {
    return embeddedInventory();
  }
  return loadInventoryFile(DEFAULT_INVENTORY_PATH);
}
