/** findTask: how a task argument names a task of the state. */
import { FactoryError } from '../errors.js';
import type { TaskRecord } from '../state/types.js';
import { compareTaskIds } from './task-order.js';

/** findTask resolves a task argument: an exact id, or a unique `plan/group` or `group/index` suffix. */
export function findTask(tasks: TaskRecord[], want: string): TaskRecord {
  const exact = tasks.find((t) => t.task === want);
  if (exact) return exact;
  const matches = tasks.filter((t) => t.task.endsWith(`/${want}`) || t.task.startsWith(`${want}/`) || `${t.plan}/${t.group}` === want);
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new FactoryError(`task '${want}' is ambiguous: ${matches.map((m) => m.task).sort(compareTaskIds).slice(0, 10).join(', ')}`, {
      code: 'E_TASK_AMBIGUOUS',
      hint: 'give the full task id plan/group/index',
    });
  }
  const known = tasks.map((t) => t.task).sort(compareTaskIds);
  throw new FactoryError(`no task '${want}' in the state`, {
    code: 'E_TASK_UNKNOWN',
    hint: known.length ? `known tasks: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}` : 'apply a plan first (factory plan apply PLAN)',
  });
}
