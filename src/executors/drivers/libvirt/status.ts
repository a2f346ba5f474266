/**
 * A VM task's TaskStatus, from what libvirt and the store say: the domain's metadata and power state
 * (absent when the domain is gone) and the task's vm.json.
 *
 *   power running / paused        → running (pid: QEMU's)
 *   power shut off                → stopped when shut off on purpose (stoppedAt), else exited
 *   power crashed                 → failed ("the guest crashed")
 *   imaging (vm.json, live pid)   → stopped, power 'imaging'
 *   no domain                     → failed when vm.json has an error (could not be created), else exited
 */
import fs from 'node:fs';
import type { TaskStatus } from '../../../protocol/messages.js';
import type { PowerState } from '../../../protocol/vm.js';
import type { TaskState } from '../../../scheduler/types.js';
import { imagingLive } from './imaging.js';
import { powerOf } from './power.js';
import type { VmRecord } from './store.js';
import type { VmMetadata } from './xml.js';

function qemuPid(domain: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(`/var/run/libvirt/qemu/${domain}.pid`, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** vmStatus is the status of the task whose domain (named domain) has metadata meta and virDomainState state, and whose vm.json is rec. */
export function vmStatus(task: string, meta: VmMetadata | undefined, rec: VmRecord | undefined, state: number | undefined, domain: string): TaskStatus {
  const spec = rec?.spec;
  const labels = meta ? { plan: meta.plan, group: meta.group, project: meta.project } : spec?.labels ?? { plan: '', group: '', project: '' };
  let power: PowerState | undefined = state === undefined ? undefined : powerOf(state);
  let taskState: TaskState;
  if (rec?.imaging && imagingLive(rec.imaging)) {
    power = 'imaging';
    taskState = 'stopped';
  } else if (power === undefined) taskState = rec?.error ? 'failed' : 'exited';
  else if (power === 'running' || power === 'paused') taskState = 'running';
  else if (power === 'crashed') taskState = 'failed';
  else taskState = rec?.stoppedAt ? 'stopped' : 'exited';
  const st: TaskStatus = {
    task,
    driver: 'libvirt',
    state: taskState,
    specHash: meta?.specHash ?? spec?.specHash ?? '',
    labels,
  };
  const stateId = meta?.state ?? rec?.state;
  if (stateId) st.stateId = stateId;
  if (power) st.power = power;
  if (taskState === 'running') {
    const pid = qemuPid(domain);
    if (pid) st.pid = pid;
  }
  if (rec?.startedAt) st.startedAt = rec.startedAt;
  if (rec?.stoppedAt && taskState !== 'running') st.finishedAt = rec.stoppedAt;
  if (rec?.error && taskState !== 'running') st.error = rec.error;
  if (power === 'crashed') st.error = 'the guest crashed';
  if (spec?.resources) st.resources = spec.resources;
  return st;
}
