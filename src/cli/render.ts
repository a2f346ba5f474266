/**
 * Human renderings of command results: tables and sizes for people. Scripts use --json instead.
 */
import type { ApplyResult, DiffResult, ResourcesView } from '../control/plan.js';
import { describePolicy } from '../deploy/describe.js';

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
export function renderDiff(d: DiffResult, verb: 'would' | 'did' = 'would', did?: string): string {
  const out: string[] = [];
  const src = d.offline ? 'declared capacity (offline)' : 'live agents';
  out.push(`Inventory ${d.inventory}, ${src}; plans: ${d.plans.map((p) => `${p.name} (project ${p.project})`).join(', ') || 'none'}`);
  for (const a of d.agents.filter((x) => x.error)) out.push(`! agent ${a.name} unreachable: ${a.error}`);
  for (const w of d.warnings) out.push(`warning: ${w}`);
  const rows = d.placements.map((p) => [
    `${MARK[p.action] ?? '?'} ${p.task}`,
    // a dead task whose restart waits for its restart backoff
    p.restartAt ? `${p.action} (backoff: restart at ${p.restartAt.slice(11, 19)}Z)` : p.action,
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
  if (d.deployments?.length) {
    out.push('', 'Deployments:');
    for (const x of d.deployments) {
      const where = x.status === 'would start' ? `${x.old} of ${x.tasks} task${x.tasks === 1 ? '' : 's'} to replace` : `${x.healthy} new healthy, ${x.old} old`;
      out.push(`  ${x.id ?? '(new)'} ${x.plan}/${x.group}: ${x.status}: ${where} (${describePolicy(x.policy)})${x.message ? ` — ${x.message}` : ''}`);
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
      : (did ?? `Applied: ${c.create} created, ${c.update} updated, ${c.destroy} destroyed.`);
  const unplaced = d.unplaced.length ? ` ${d.unplaced.length} task${d.unplaced.length === 1 ? '' : 's'} unplaced.` : '';
  out.push('', total === 0 ? `No changes.${unplaced}` : `${summary}${unplaced}`);
  return out.join('\n');
}

/**
 * appliedSummary counts what apply or destroy did, from the executor calls that succeeded (not
 * from the plan): a restart is not a create, a start that failed is not created, the old copy of a
 * moved task is not a destroy.
 */
export function appliedSummary(r: ApplyResult, what: 'apply' | 'destroy'): string {
  const actionOf = new Map(r.placements.map((p) => [p.task, p.action]));
  const removed = new Set(r.stops.filter((s) => s.reason === 'destroy' || s.reason === 'removed' || s.reason === 'scaled-down').map((s) => s.task));
  const n = { create: 0, update: 0, restart: 0, reschedule: 0, destroy: 0, failed: 0 };
  for (const x of r.results) {
    if (!x.ok) n.failed++;
    else if (x.action === 'stop') {
      if (removed.has(x.task) && x.state !== 'deferred') n.destroy++;
    } else {
      const a = actionOf.get(x.task);
      if (a === 'create' || a === 'update' || a === 'restart' || a === 'reschedule') n[a]++;
    }
  }
  const plural = (k: number) => (k === 1 ? '' : 's');
  const failed = n.failed ? ` ${n.failed} operation${plural(n.failed)} failed.` : '';
  if (what === 'destroy') return `Destroyed ${n.destroy} task${plural(n.destroy)}.${failed}`;
  const extra = [n.restart ? `${n.restart} restarted` : '', n.reschedule ? `${n.reschedule} moved` : ''].filter(Boolean).join(', ');
  return `Applied: ${n.create} created, ${n.update} updated, ${n.destroy} destroyed${extra ? `, ${extra}` : ''}.${failed}`;
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
  const out = [renderDiff(r, 'did', appliedSummary(r, what))];
  if (r.jobs) out.push(`Jobs: ${r.jobs.created.length} created, ${r.jobs.updated.length} updated, ${r.jobs.removed.length} removed.`);
  const failed = r.results.filter((x) => !x.ok);
  if (failed.length) {
    out.push('', `${failed.length} operation${failed.length === 1 ? '' : 's'} failed:`);
    for (const f of failed) out.push(`  ${f.task} on ${f.agent}: ${f.action}: ${f.error}`);
  }
  return out.join('\n');
}
