/**
 * checkPlanRaw: the checks of a plan that zod cannot express, run on the raw document so that they
 * report together with zod's issues: custom resource names, the two forms of a VM group, a VM's
 * address check without a subnet, and duplicate group and job names.
 */
import { PLAN_SECTIONS } from './plan-build.js';
import { checkResourceKeys, isObj, listOf, type Obj } from './raw-checks.js';
import { GROUP_RESOURCE_KEYS } from './schema.js';
import type { PathSeg, SpecSource } from './source.js';

/** checkPlanRaw runs the cross-field and cross-group checks zod cannot express, on the raw document. */
export function checkPlanRaw(src: SpecSource): void {
  const data = src.data as Obj;
  const names: { name: string; path: PathSeg[]; line: number; col: number }[] = [];
  for (const [section] of PLAN_SECTIONS) {
    listOf(data[section]).forEach((g, i) => {
      if (!isObj(g)) return;
      const path: PathSeg[] = [section, i];
      checkResourceKeys(src, [...path, 'resources'], g.resources, GROUP_RESOURCE_KEYS);
      if (typeof g.name === 'string') names.push({ name: g.name, path, ...src.positionOf(path) });
      if (section === 'vms') {
        const hasTotal = 'total' in g;
        const hasShapes = 'shapes' in g;
        if (hasTotal && 'count' in g) src.issue([...path, 'count'], 'use either count + resources or total + shapes, not both', true);
        if (hasTotal && 'resources' in g) src.issue([...path, 'resources'], 'use either count + resources or total + shapes, not both', true);
        if (hasTotal && !hasShapes) src.issue([...path, 'total'], 'total needs shapes: the VM sizes to split it into', true);
        if (hasShapes && !hasTotal) src.issue([...path, 'shapes'], 'shapes need total: the amount to split into these shapes', true);
        const h = g.health;
        if (isObj(h) && (h.tcp !== undefined || h.http !== undefined) && g.subnet === undefined) {
          src.issue([...path, 'health'], 'a VM\'s tcp or http health check needs a subnet: the agent reaches the VM through its NIC (or use a command check)');
        }
        if (!hasTotal && !hasShapes) {
          const r = g.resources;
          if (!isObj(r) || r.cpus === undefined || r.mem === undefined) {
            src.issue([...path, ...(isObj(r) ? ['resources'] : [])], 'vms need resources with cpus and mem (with count), or total + shapes');
          }
        }
      }
    });
  }
  names.sort((a, b) => a.line - b.line || a.col - b.col);
  const first = new Map<string, { line: number; col: number }>();
  for (const n of names) {
    const f = first.get(n.name);
    if (f) src.issue([...n.path, 'name'], `duplicate group name '${n.name}' (first defined at ${f.line}:${f.col})`);
    else first.set(n.name, n);
  }
  const jobNames = new Map<string, { line: number; col: number }>();
  listOf(data.jobs).forEach((j, i) => {
    if (!isObj(j)) return;
    checkResourceKeys(src, ['jobs', i, 'resources'], j.resources, GROUP_RESOURCE_KEYS);
    if (typeof j.name !== 'string') return;
    const f = jobNames.get(j.name);
    if (f) src.issue(['jobs', i, 'name'], `duplicate job name '${j.name}' (first defined at ${f.line}:${f.col})`);
    else jobNames.set(j.name, src.positionOf(['jobs', i]));
  });
}
