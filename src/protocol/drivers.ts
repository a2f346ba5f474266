/**
 * The driver names a plan, an inventory and an agent's registration may use, and which of them run
 * VMs. Both sides import this one list: the spec's schema, the scheduler's types and the executor's
 * driver registry (src/executors/drivers/registry.ts, whose test checks it serves every name here).
 */

/** DRIVER_NAMES lists every driver, in the order an agent reports the ones it has. */
export const DRIVER_NAMES = ['process', 'docker', 'libvirt'] as const;

/** DriverName is one of DRIVER_NAMES. */
export type DriverName = (typeof DRIVER_NAMES)[number];

/** VM_DRIVERS are the drivers whose tasks are VMs: `factory vm …` acts on their tasks and `factory vm push` fills their image store. */
export const VM_DRIVERS: readonly DriverName[] = ['libvirt'];

/** isVmDriver tells whether a driver's tasks are VMs (power actions, images made from them). */
export function isVmDriver(name: string): boolean {
  return (VM_DRIVERS as readonly string[]).includes(name);
}
