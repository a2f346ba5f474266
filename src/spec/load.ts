/**
 * Loading plans: read the files (read.ts), parse them keeping node positions (SpecSource), validate
 * with the zod schema and the raw checks, and build each PlanSpec; every issue of every file is
 * reported at once, as `file:line:col: path: message`.
 */
import { SpecError, type SpecIssue } from '../errors.js';
import { expandPlanPaths, readSpecFile } from './read.js';
import type { GroupSpec, PlanSpec } from './model.js';
import { buildJob, checkJobs } from './job-build.js';
import { buildGroup, PLAN_SECTIONS, type RawGroup } from './plan-build.js';
import { checkPlanRaw } from './plan-checks.js';
import { planSchema, type RawPlan } from './schema.js';
import { SpecSource } from './source.js';
import { zodErrorMap } from './zod-messages.js';
import { checkUpdateLayers, updateSettingsOf } from './update.js';

// where each loaded plan's `name` is, for loadPlans' duplicate-name issue
const planNamePositions = new WeakMap<PlanSpec, { line: number; col: number }>();

/**
 * loadPlanText validates plan YAML text and returns the PlanSpec. `file` names the source in messages.
 * Throws SpecError carrying every issue of the file.
 */
export function loadPlanText(text: string, file: string): PlanSpec {
  const src = SpecSource.parse(text, file, 'plan');
  const top = src.data as Record<string, unknown> | null;
  if (top && typeof top === 'object' && !Array.isArray(top) && 'idcs' in top && !('name' in top)) {
    // an inventory among the plans (`plan diff examples/` reads examples/inventory.example.yaml)
    src.issue([], 'this file is an inventory (it has idcs:), not a plan: pass it with --inventory, and keep it out of the plan folders');
    src.throwIfIssues();
  }
  const result = planSchema.safeParse(src.data, { error: zodErrorMap });
  if (!result.success) src.addZodIssues(result.error.issues);
  checkPlanRaw(src);
  src.throwIfIssues();
  const raw = result.data as RawPlan;
  const groupNames = new Set(PLAN_SECTIONS.flatMap(([section]) => (raw[section] ?? []).map((g) => g.name)));
  checkJobs(src, raw.jobs ?? [], groupNames);
  const planUpdate = raw.update ? updateSettingsOf(raw.update) : undefined;
  if (planUpdate) checkUpdateLayers(src, [{ at: ['update'], settings: planUpdate }]);
  for (const [section] of PLAN_SECTIONS) {
    (raw[section] ?? []).forEach((g, i) => {
      if (g.update) checkUpdateLayers(src, [{ at: [section, i, 'update'], settings: updateSettingsOf(g.update) }, ...(planUpdate ? [{ at: ['update'], settings: planUpdate }] : [])]);
    });
  }
  src.throwIfIssues();
  const groups: GroupSpec[] = [];
  for (const [section, kind, driver] of PLAN_SECTIONS) {
    (raw[section] ?? []).forEach((g, i) => groups.push(buildGroup(src, section, i, g as RawGroup, kind, driver)));
  }
  groups.sort((a, b) => a.line - b.line || a.col - b.col);
  const jobs = (raw.jobs ?? []).map((j, i) => buildJob(src, i, j));
  const plan: PlanSpec = { file, name: raw.name, project: raw.project, groups, ...(jobs.length ? { jobs } : {}), warnings: src.warnings };
  if (planUpdate) plan.update = planUpdate;
  if (raw.placement) {
    plan.placement = {};
    if (raw.placement.idcs) plan.placement.idcs = raw.placement.idcs;
    if (raw.placement.cluster) plan.placement.cluster = raw.placement.cluster;
  }
  planNamePositions.set(plan, src.positionOf(['name']));
  return plan;
}

/** loadPlanFile reads and validates one plan file. */
export async function loadPlanFile(path: string): Promise<PlanSpec> {
  return loadPlanText(await readSpecFile(path, 'plan'), path);
}

/**
 * loadPlans loads several plans (files or folders), reporting the issues of every file at once, and
 * rejects two plans with the same name.
 */
export async function loadPlans(paths: string[]): Promise<PlanSpec[]> {
  const files = await expandPlanPaths(paths);
  const plans: PlanSpec[] = [];
  const issues: SpecIssue[] = [];
  for (const f of files) {
    try {
      plans.push(await loadPlanFile(f));
    } catch (e) {
      if (e instanceof SpecError) issues.push(...e.issues);
      else throw e;
    }
  }
  const byName = new Map<string, PlanSpec>();
  for (const p of plans) {
    const other = byName.get(p.name);
    if (other) {
      const pos = planNamePositions.get(p) ?? { line: 1, col: 1 };
      issues.push({ file: p.file, ...pos, path: 'name', message: `duplicate plan name '${p.name}' (also in ${other.file})` });
    } else byName.set(p.name, p);
  }
  if (issues.length > 0) throw new SpecError(issues);
  return plans;
}
