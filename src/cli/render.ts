/**
 * Human renderings of command results: tables and sizes for people. Scripts use --json instead.
 */
import type { ApplyResult, DiffResult, ResourcesView } from '../control/plan.js';

/** formatBytes prints a byte count with a binary unit (e.g. 32Mi, 1.5Gi). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '');
  return `${s}${units[i]}`;
}

/** formatResources prints a task's resource ask compactly. */
export function formatResources(r: ResourcesView): string {
  const parts = [`cpus ${r.cpus}`, `mem ${formatBytes(r.mem)}`];
  if (r.disk) parts.push(`disk ${formatBytes(r.disk)}`);
  if (r.gpus) parts.push(`gpus ${r.gpus}`);
  if (r.ports.length) parts.push(`ports ${r.ports.join(',')}`);
  for (const [k, v] of Object.entries(r)) {
    if (['cpus', 'mem', 'disk', 'gpus', 'ports'].includes(k)) continue;
    parts.push(`${k} ${typeof v === 'number' ? v : String(v)}`);
  }
  return parts.join(' ');
}

/** table renders rows as aligned columns with a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const MARK: Record<string, string> = { create: '+', restart: '↻', update: '~', reschedule: '→', keep: ' ' };

/** renderDiff prints what apply would do, grouped per plan, with unplaced tasks and their reasons. */
export function renderDiff(d: DiffResult, verb: 'would' | 'did' = 'would'): string {
  const out: string[] = [];
  const src = d.offline ? 'declared capacity (offline)' : 'live agents';
  out.push(`Inventory ${d.inventory}, ${src}; plans: ${d.plans.map((p) => `${p.name} (project ${p.project})`).join(', ') || 'none'}`);
  for (const a of d.agents.filter((x) => x.error)) out.push(`! agent ${a.name} unreachable: ${a.error}`);
  for (const w of d.warnings) out.push(`warning: ${w}`);
  const rows = d.placements.map((p) => [
    `${MARK[p.action] ?? '?'} ${p.task}`,
    p.action,
    `${p.agent} (${p.idc}/${p.cluster})`,
    p.driver,
    formatResources(p.resources),
  ]);
  for (const s of d.stops) rows.push([`- ${s.task}`, s.reason === 'destroy' || s.reason === 'removed' || s.reason === 'scaled-down' ? 'destroy' : s.reason, s.agent, '', `(${s.reason})`]);
  if (rows.length) out.push('', table(['TASK', 'ACTION', 'AGENT', 'DRIVER', 'RESOURCES'], rows));
  const plansOfGroups = (d.groups ?? []).filter((g) => g.split || g.note);
  if (plansOfGroups.length) {
    out.push('', 'Groups:');
    for (const g of plansOfGroups) {
      const where = g.cluster ? `${g.idc}/${g.cluster}` : 'nowhere';
      const split = g.split ? `: ${g.split.map((x) => `${x.count}×${x.cpus} cpus`).join(' + ')}` : '';
      out.push(`  ${g.plan}/${g.group} → ${where}${split}${g.note ? ` (${g.note})` : ''}`);
    }
  }
  const stranded = formatStranded(d.stranded);
  if (stranded) out.push('', `Stranded (free where no task of these plans fits): ${stranded}`);
  if (d.unplaced.length) {
    out.push('', `Unplaced (${d.unplaced.length}):`);
    const byGroup = new Map<string, { tasks: string[]; reason: string }>();
    for (const u of d.unplaced) {
      const key = `${u.plan}/${u.group}\u0000${u.reason}`;
      const e = byGroup.get(key) ?? { tasks: [], reason: u.reason };
      e.tasks.push(u.task);
      byGroup.set(key, e);
    }
    for (const [key, e] of byGroup) {
      out.push(`  ${key.split('\u0000')[0]} (${e.tasks.length} task${e.tasks.length === 1 ? '' : 's'})`);
      out.push(`    ${e.reason}`);
    }
  }
  const c = d.changes;
  const total = c.create + c.update + c.destroy;
  const summary =
    verb === 'would'
      ? `Plan: ${c.create} to create, ${c.update} to update, ${c.destroy} to destroy.`
      : `Applied: ${c.create} created, ${c.update} updated, ${c.destroy} destroyed.`;
  const unplaced = d.unplaced.length ? ` ${d.unplaced.length} task${d.unplaced.length === 1 ? '' : 's'} unplaced.` : '';
  out.push('', total === 0 ? `No changes.${unplaced}` : `${summary}${unplaced}`);
  return out.join('\n');
}

/** formatStranded prints stranded capacity per resource (`cpus 12, mem 3Gi`), or '' when none is stranded. */
export function formatStranded(stranded: Record<string, number> | undefined): string {
  if (!stranded) return '';
  return Object.entries(stranded)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${k === 'mem' || k === 'disk' ? formatBytes(v) : Number(v.toFixed(3))}`)
    .join(', ');
}

/** renderApply prints the outcome of apply or destroy: the plan, then failures. */
export function renderApply(r: ApplyResult, what: 'apply' | 'destroy'): string {
  const out = [renderDiff(r, 'did')];
  const failed = r.results.filter((x) => !x.ok);
  if (failed.length) {
    out.push('', `${failed.length} operation${failed.length === 1 ? '' : 's'} failed:`);
    for (const f of failed) out.push(`  ${f.task} on ${f.agent}: ${f.action}: ${f.error}`);
  } else if (what === 'destroy') {
    out.push(`Destroyed ${r.results.length} task${r.results.length === 1 ? '' : 's'}.`);
  }
  return out.join('\n');
}
