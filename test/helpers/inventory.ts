/**
 * Test inventories written from objects: the IDC → cluster → agent nesting and the YAML are here
 * once, so a test says only which agents it wants and how they are reached.
 */
import fs from 'node:fs';
import { stringify } from 'yaml';

/** TestAgentSsh is how an agent is reached over SSH, as the inventory's `ssh:` block says it. */
export interface TestAgentSsh {
  host: string;
  port?: number;
  user?: string;
  identityFile?: string;
  knownHostsFile?: string;
  nodePath?: string;
}

/** TestAgent is one agent of a test inventory: local (`local: true`) or reached over SSH. */
export interface TestAgent {
  name: string;
  local?: boolean;
  ssh?: TestAgentSsh;
  workDir?: string;
  resources?: Record<string, number | string>;
  attributes?: Record<string, string>;
}

/** TestIdc is one IDC of a test inventory with its clusters and their agents. */
export interface TestIdc<A = TestAgent> {
  name: string;
  clusters: { name: string; agents: A[] }[];
}

/** oneCluster is the IDCs of an inventory that has one IDC holding one cluster. */
export function oneCluster<A>(idc: string, cluster: string, agents: A[]): TestIdc<A>[] {
  return [{ name: idc, clusters: [{ name: cluster, agents }] }];
}

/** inventoryYaml is the inventory file's text for these IDCs and settings (e.g. `{connectTimeout: '5s'}`). */
export function inventoryYaml(idcs: TestIdc[], settings?: Record<string, unknown>): string {
  return stringify({ ...(settings ? { settings } : {}), idcs });
}

/** writeInventory writes inventoryYaml(idcs, settings) to file. */
export function writeInventory(file: string, idcs: TestIdc[], settings?: Record<string, unknown>): void {
  fs.writeFileSync(file, inventoryYaml(idcs, settings));
}
