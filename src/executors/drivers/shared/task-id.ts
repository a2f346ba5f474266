/**
 * Task ids as host names: every driver turns `plan/group/index` into a folder, container or domain
 * name, so every driver refuses the same unsafe ids with the same error.
 */
import { FactoryError } from '../../../errors.js';

const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** taskDirName maps a task id `plan/group/index` to its folder name `plan.group.index`, refusing unsafe ids. */
export function taskDirName(task: string): string {
  if (typeof task !== 'string' || !TASK_ID.test(task) || task.length > 200) {
    throw new FactoryError(`invalid task id ${JSON.stringify(task)}: expected plan/group/index`, { code: 'E_TASK_ID' });
  }
  return task.replace(/\//g, '.');
}
