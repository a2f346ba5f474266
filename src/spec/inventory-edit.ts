/**
 * Editing an inventory file in place for `factory agents add|remove`: the YAML document is changed
 * through the yaml library's Document API, so comments, order and formatting of everything else
 * survive; the result is validated like any inventory before it replaces the file (atomically).
 */
import fs from 'node:fs';
import path from 'node:path';
import { isMap, isSeq, parseDocument, YAMLMap, YAMLSeq, type Document } from 'yaml';
import { FactoryError } from '../errors.js';
import { loadInventoryText } from './inventory.js';
import type { InventorySpec } from './model.js';

/** NewAgent is what `agents add` puts in the inventory. */
export interface NewAgent {
  name: string;
  idc: string;
  cluster: string;
  ssh?: { host: string; port?: number; user?: string; identityFile?: string; nodePath?: string; hostKeyPolicy?: 'strict' | 'accept-new' };
  local?: boolean;
  workDir?: string;
  attributes?: Record<string, string>;
  resources?: Record<string, string | number>;
}

function findNamed(seq: unknown, name: string): YAMLMap | undefined {
  if (!isSeq(seq)) return undefined;
  return seq.items.find((it): it is YAMLMap => isMap(it) && it.get('name') === name);
}

function seqAt(doc: Document, map: YAMLMap, key: string): YAMLSeq {
  let seq = map.get(key);
  if (!isSeq(seq)) {
    seq = doc.createNode([]) as YAMLSeq;
    map.set(key, seq);
  }
  return seq as YAMLSeq;
}

function readDoc(file: string): { doc: Document; text: string } {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FactoryError(`cannot read inventory ${file}: ${(err as Error).message}`, { code: 'E_INVENTORY_READ' });
  }
  const doc = parseDocument(text === '' ? 'idcs: []\n' : text);
  if (doc.errors.length) throw new FactoryError(`${file}: ${doc.errors[0]!.message}`, { code: 'E_SPEC_INVALID' });
  if (!isMap(doc.contents)) throw new FactoryError(`${file}: the inventory is not a mapping`, { code: 'E_SPEC_INVALID' });
  return { doc, text };
}

function writeValidated(file: string, doc: Document): InventorySpec {
  const out = doc.toString();
  const inv = loadInventoryText(out, file); // throws SpecError: nothing is written
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, out, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return inv;
}

/** addAgentToInventory appends an agent under its IDC and cluster (created when missing) and writes the file. */
export function addAgentToInventory(file: string, a: NewAgent): InventorySpec {
  const { doc } = readDoc(file);
  const root = doc.contents as YAMLMap;
  const idcs = seqAt(doc, root, 'idcs');
  for (const idc of idcs.items) {
    if (!isMap(idc)) continue;
    const clusters = idc.get('clusters');
    if (!isSeq(clusters)) continue;
    for (const cl of clusters.items) {
      if (isMap(cl) && findNamed(cl.get('agents'), a.name)) {
        throw new FactoryError(`agent ${a.name} is already in ${file} (idc ${String(idc.get('name'))}, cluster ${String(cl.get('name'))})`, { code: 'E_AGENT_EXISTS' });
      }
    }
  }
  let idc = findNamed(idcs, a.idc);
  if (!idc) {
    idc = doc.createNode({ name: a.idc, clusters: [] }) as YAMLMap;
    idcs.items.push(idc);
  }
  const clusters = seqAt(doc, idc, 'clusters');
  let cluster = findNamed(clusters, a.cluster);
  if (!cluster) {
    cluster = doc.createNode({ name: a.cluster, agents: [] }) as YAMLMap;
    clusters.items.push(cluster);
  }
  const entry: Record<string, unknown> = { name: a.name };
  if (a.ssh) entry.ssh = Object.fromEntries(Object.entries(a.ssh).filter(([, v]) => v !== undefined));
  if (a.local) entry.local = true;
  if (a.workDir) entry.workDir = a.workDir;
  if (a.resources && Object.keys(a.resources).length) entry.resources = a.resources;
  if (a.attributes && Object.keys(a.attributes).length) entry.attributes = a.attributes;
  const node = doc.createNode(entry) as YAMLMap;
  const ssh = node.get('ssh');
  if (isMap(ssh)) ssh.flow = true;
  seqAt(doc, cluster, 'agents').items.push(node);
  return writeValidated(file, doc);
}

/** removeAgentFromInventory deletes an agent's entry (clusters and IDCs stay) and writes the file. */
export function removeAgentFromInventory(file: string, name: string): InventorySpec {
  const { doc } = readDoc(file);
  const idcs = (doc.contents as YAMLMap).get('idcs');
  if (isSeq(idcs)) {
    for (const idc of idcs.items) {
      if (!isMap(idc)) continue;
      const clusters = idc.get('clusters');
      if (!isSeq(clusters)) continue;
      for (const cl of clusters.items) {
        if (!isMap(cl)) continue;
        const agents = cl.get('agents');
        if (!isSeq(agents)) continue;
        const i = agents.items.findIndex((it) => isMap(it) && it.get('name') === name);
        if (i >= 0) {
          agents.items.splice(i, 1);
          return writeValidated(file, doc);
        }
      }
    }
  }
  throw new FactoryError(`agent ${name} is not in ${file}`, { code: 'E_AGENT_UNKNOWN' });
}
