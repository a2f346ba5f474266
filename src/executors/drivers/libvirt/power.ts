/**
 * A VM's power: libvirt's domain states as PowerStates, the ACPI shutdown with a forced fallback, and
 * the power actions of `factory vm start | stop | reboot | force-off` (imaging is imaging.ts).
 */
import { FactoryError } from '../../../errors.js';
import type { PowerState, VmAction } from '../../../protocol/vm.js';
import { libvirtError, type Libvirt, type LvDomain } from './connection.js';
import type { VmStore } from './store.js';

/** DOMAIN_STATE are libvirt's virDomainState numbers. */
export const DOMAIN_STATE = { NOSTATE: 0, RUNNING: 1, BLOCKED: 2, PAUSED: 3, SHUTDOWN: 4, SHUTOFF: 5, CRASHED: 6, PMSUSPENDED: 7 } as const;
const ST = DOMAIN_STATE;

/** powerOf maps a libvirt domain state number to a PowerState ('in shutdown' is still running). */
export function powerOf(state: number): PowerState {
  switch (state) {
    case ST.PAUSED:
    case ST.PMSUSPENDED:
      return 'paused';
    case ST.SHUTOFF:
      return 'shut off';
    case ST.CRASHED:
      return 'crashed';
    default:
      return 'running';
  }
}

/** powerState is a domain's virDomainState number. */
export async function powerState(dom: LvDomain): Promise<number> {
  return (await dom.getInfo()).state;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitShutOff(dom: LvDomain, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    const s = await powerState(dom).catch(() => ST.SHUTOFF);
    if (s === ST.SHUTOFF) return true;
    if (Date.now() >= until) return false;
    await sleep(100);
  }
}

/** shutdownDomain sends the ACPI power button, waits up to graceMs, then forces the VM off. */
export async function shutdownDomain(dom: LvDomain, graceMs: number): Promise<'acpi' | 'forced' | 'already'> {
  const s = await powerState(dom);
  if (s === ST.SHUTOFF) return 'already';
  if (s === ST.RUNNING || s === ST.BLOCKED || s === ST.SHUTDOWN) {
    try {
      if (graceMs > 0) {
        await dom.shutdown();
        if (await waitShutOff(dom, graceMs)) return 'acpi';
      }
    } catch {
      /* fall through to destroy */
    }
  }
  await dom.destroy().catch((err) => {
    if (!/not running/i.test(String((err as Error).message))) throw libvirtError('force off', err);
  });
  await waitShutOff(dom, 10_000);
  return 'forced';
}

/** PowerActionOptions are a power action's options: how long `stop` waits for the guest. */
export interface PowerActionOptions {
  /** timeoutMs is how long `stop` waits before forcing the VM off (default max(stopGrace, 30 s)). */
  timeoutMs?: number;
}

/**
 * powerAction runs start (create or resume), stop (ACPI, then destroy), force-off or reboot (virsh
 * reboot --mode acpi; only a running VM) on a task's domain in state, and records it in vm.json.
 */
export async function powerAction(lv: Libvirt, store: VmStore, task: string, dom: LvDomain, state: number, action: Exclude<VmAction, 'image'>, opts: PowerActionOptions = {}): Promise<void> {
  const rec = store.readRecord(task);
  const now = () => new Date().toISOString();
  switch (action) {
    case 'start':
      if (state === ST.PAUSED || state === ST.PMSUSPENDED) await dom.resume().catch((e) => Promise.reject(libvirtError('resume', e)));
      else if (state === ST.SHUTOFF || state === ST.CRASHED) {
        if (state === ST.CRASHED) await dom.destroy().catch(() => undefined);
        await dom.create().catch((e) => Promise.reject(libvirtError('start', e)));
        store.updateRecord(task, (r) => (r.startedAt = now()));
      }
      store.updateRecord(task, (r) => {
        delete r.stoppedAt;
        delete r.error;
      });
      break;
    case 'stop':
      await shutdownDomain(dom, opts.timeoutMs ?? Math.max(rec?.spec.stopGraceMs ?? 0, 30_000));
      store.updateRecord(task, (r) => (r.stoppedAt = now()));
      break;
    case 'force-off':
      await shutdownDomain(dom, 0);
      store.updateRecord(task, (r) => (r.stoppedAt = now()));
      break;
    case 'reboot':
      if (powerOf(state) !== 'running') throw new FactoryError(`VM ${task} is ${powerOf(state)}: only a running VM reboots (start it: factory vm start ${task})`, { code: 'E_VM_STATE' });
      await lv.tool('virsh', ['-c', lv.uri, 'reboot', store.domainName(task), '--mode', 'acpi']);
      break;
    default:
      throw new FactoryError(`unknown VM action ${JSON.stringify(action)}`, { code: 'E_BAD_REQUEST' });
  }
}
