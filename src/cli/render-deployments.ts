/** How `factory deploy list` and `deploy status` print deployments. */
import type { DeploymentRecord } from '../deploy/types.js';
import { deploymentCounts, describePolicy } from '../deploy/describe.js';
import type { EventRecord } from '../state/backend.js';
import { table } from './render.js';

/** ageOf is how long ago an ISO time was, in the largest whole unit (45s, 12m, 3h, 2d). */
export function ageOf(iso: string, now: number): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172_800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
}


/** renderDeployments is the deployments table: id, plan/group, status, old/new/healthy counts, age. */
export function renderDeployments(list: DeploymentRecord[], now: number): string {
  if (list.length === 0) return 'No deployments (plan apply starts one when a group\'s spec changes).';
  return table(
    ['ID', 'GROUP', 'STATUS', 'OLD', 'NEW', 'HEALTHY', 'AGE', 'NOTE'],
    list.map((d) => {
      const c = deploymentCounts(d);
      return [d.id, `${d.plan}/${d.group}`, d.status, String(c.old), String(c.new), String(c.healthy), ageOf(d.createdAt, now), d.revertOf ? `revert of ${d.revertOf}` : d.revertedBy ? `reverted by ${d.revertedBy}` : ''];
    }),
  );
}

/** renderDeployment is one deployment in detail: what it rolls and how, where it stands, each new task, why it ended, its events. */
export function renderDeployment(d: DeploymentRecord, events: EventRecord[], now: number): string {
  const c = deploymentCounts(d);
  const out = [
    `${d.id}  ${d.plan}/${d.group} (project ${d.project})`,
    `  status:   ${d.status}${d.message ? ` — ${d.message}` : ''}`,
    `  spec:     ${d.fromHash} → ${d.toHash}${d.revertOf ? ` (reverts ${d.revertOf})` : ''}${d.revertedBy ? ` (reverted by ${d.revertedBy})` : ''}`,
    `  policy:   ${describePolicy(d.policy)}${d.policy.progressDeadlineMs > 0 ? `, progress deadline ${d.policy.progressDeadlineMs / 1000}s` : ''}`,
    `  tasks:    ${c.old} old, ${c.new} new, ${c.healthy} healthy${d.policy.canary ? `; canaries ${d.promoted ? 'promoted' : 'not promoted'}` : ''}`,
    `  started:  ${d.createdAt} (${ageOf(d.createdAt, now)} ago)${d.by ? ` by ${d.by}` : ''}; last progress ${d.progressAt}${d.finishedAt ? `; ended ${d.finishedAt}` : ''}`,
  ];
  if (d.unplaced?.length) out.push(`  unplaced: ${d.unplaced.map((u) => `${u.task}: ${u.reason}`).join('; ')}`);
  if (d.tasks.length) {
    out.push('', table(['TASK', 'STATE', 'STARTED', 'HEALTHY AT', 'NOTE'], d.tasks.map((t) => [t.task, t.state, t.startedAt, t.healthyAt ?? '-', [t.canary ? 'canary' : '', t.error ?? ''].filter(Boolean).join(': ')])));
  }
  if (events.length) out.push('', 'Events:', ...events.map((e) => `  ${e.at} ${e.kind}${e.by ? ` (${e.by})` : ''}: ${e.message}`));
  return out.join('\n');
}
