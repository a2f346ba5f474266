/**
 * `factory vm start | stop | reboot | force-off | image`: one power action on one VM, through the
 * agent the state says it runs on. The VM's new status is recorded in the state afterwards.
 */
import { FactoryError } from '../errors.js';
import { isVmDriver } from '../protocol/drivers.js';
import type { VmAction, VmActionResult } from '../protocol/vm.js';
import type { TaskRecord } from '../state/types.js';
import { withStateWork } from './state-handle.js';
import { recordTaskStatus } from './snapshot.js';
import { withAgentOfTask } from './session.js';

/** VmActionOptions select the state, the inventory, the VM (task id or unique suffix) and the action. */
export interface VmActionOptions {
  stateDir: string;
  inventoryPath?: string;
  task: string;
  action: VmAction;
  /** imageName names the image an `image` action makes. */
  imageName?: string;
  /** timeoutMs is how long `stop` waits for the guest before forcing it off (default max(stopGrace, 30 s)). */
  timeoutMs?: number;
  /** by is who asks (recorded on the event). */
  by?: string;
}

/** VmActionView is the `vm …--json` document: the action's result, where it ran, and the task state after. */
export interface VmActionView extends VmActionResult {
  agent: string;
  state: string;
}

/** vmAction finds the VM's agent in the state, runs the action there, and records the VM's status. */
export async function vmAction(opts: VmActionOptions): Promise<VmActionView> {
  if (opts.action === 'image' && !opts.imageName) throw new FactoryError('vm image needs a name for the new image', { code: 'E_BAD_REQUEST' });
  const notAVm = (rec: TaskRecord) => {
    if (!isVmDriver(rec.driver)) {
      throw new FactoryError(`task ${rec.task} is not a VM (driver ${rec.driver})`, { code: 'E_NOT_A_VM', hint: 'vm commands act on tasks of a plan\'s `vms` section' });
    }
  };
  return withAgentOfTask({ ...opts, what: 'VM', check: notAVm }, async ({ rec, state, spec, conn: c }) => {
    const result = await c.client.vmAction(rec.task, opts.action, {
      ...(opts.imageName !== undefined ? { imageName: opts.imageName } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    // our copy of the task: another state may run a VM of the same id on this agent
    const copies = (await c.client.inspect()).filter((t) => t.task === rec.task && (t.stateId ?? state.id) === state.id);
    const st = copies.find((t) => t.stateId === state.id) ?? copies[0];
    let taskState: string = st?.state ?? rec.state;
    await withStateWork(opts.stateDir, { timeoutMs: 10_000, purpose: `vm ${opts.action}` }, opts.by, async (work) => {
      const now = new Date().toISOString();
      if (st) {
        const prev = work.tasks.get(rec.task);
        recordTaskStatus(work, spec.name, { ...st, resources: st.resources ?? prev?.resources }, now);
        taskState = st.state;
      }
      const what = opts.action === 'image' && result.image ? `imaged ${rec.task} as ${result.image.name} (${result.image.id.slice(0, 12)})` : `vm ${opts.action} ${rec.task}: ${result.power}`;
      work.event({ at: now, topic: 'vm', kind: `vm-${opts.action}`, task: rec.task, agent: spec.name, message: `${what} on ${spec.name}` });
    });
    return { ...result, agent: spec.name, state: taskState };
  });
}
