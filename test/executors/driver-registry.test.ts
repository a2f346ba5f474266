/**
 * The driver registry is the one list of drivers an executor offers: every driver name the spec
 * accepts has an entry, every entry can be probed and made, and a capability an entry declares is
 * one its class implements (and the other way round), so the executor's dispatch by capability
 * never reaches a driver without the method.
 */
import os from 'node:os';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { CAPABILITY_METHODS, hasContainerImages, hasVmImages, hasVmPower, type Capability, type UnlistedCapabilityMethods } from '../../src/executors/drivers/capabilities.js';
import type { Driver, DriverContext } from '../../src/executors/drivers/driver.js';
import { ProcessDriver } from '../../src/executors/drivers/process/index.js';
import { DRIVER_REGISTRY, declaresCapability, driverEntry, openDrivers, unavailableMessage } from '../../src/executors/drivers/registry.js';
import { DRIVER_NAMES, isVmDriver } from '../../src/protocol/drivers.js';
import { agentSchema } from '../../src/spec/schema.js';

const CAPABILITIES = Object.keys(CAPABILITY_METHODS) as Capability[];

/** fake is a driver object of a name, for the guards: it runs nothing. */
function fake(name: Driver['name'], extra: object = {}): Driver {
  return { name, run: async () => undefined as never, stop: async () => undefined as never, inspect: async () => [], status: async () => undefined, logs: async () => undefined, ...extra };
}

describe('driver registry', () => {
  it('every entry has a name, a probe, a driver and an open; names are unique', () => {
    expect(DRIVER_REGISTRY.length).toBeGreaterThan(0);
    for (const e of DRIVER_REGISTRY) {
      expect(typeof e.name, 'name').toBe('string');
      expect(typeof e.probe, `${e.name}: probe`).toBe('function');
      expect(typeof e.driver, `${e.name}: driver`).toBe('function');
      expect(typeof e.open, `${e.name}: open`).toBe('function');
    }
    const names = DRIVER_REGISTRY.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('serves exactly the driver names the spec accepts, in their order', () => {
    expect(DRIVER_REGISTRY.map((e) => e.name)).toEqual([...DRIVER_NAMES]);
    for (const name of DRIVER_NAMES) {
      expect(driverEntry(name).name).toBe(name);
      expect(agentSchema.safeParse({ name: 'a', local: true, drivers: [name] }).success, `the inventory accepts ${name}`).toBe(true);
    }
    expect(agentSchema.safeParse({ name: 'a', local: true, drivers: ['qemu'] }).success).toBe(false);
  });

  it("a driver's class has the methods of every capability it declares, and declares every capability it has", async () => {
    for (const e of DRIVER_REGISTRY) {
      const proto = (await e.driver()).prototype as unknown as Record<string, unknown>;
      for (const cap of CAPABILITIES) {
        const methods: readonly string[] = CAPABILITY_METHODS[cap];
        const has = methods.filter((m) => typeof proto[m] === 'function');
        if (e.capabilities.includes(cap)) expect(has, `${e.name} declares ${cap}`).toEqual(methods);
        else expect(has.length, `${e.name} has the methods of ${cap} (${has.join(', ')}) but does not declare it`).toBeLessThan(methods.length);
      }
      for (const cap of e.capabilities) expect(CAPABILITIES, `${e.name}: unknown capability`).toContain(cap);
    }
    expectTypeOf<UnlistedCapabilityMethods>().toBeNever();
  });

  it('the guards read the declarations: VM power and VM images on libvirt, container images on docker, nothing on process', () => {
    expect([hasVmPower, hasVmImages, hasContainerImages].map((g) => g(fake('libvirt')))).toEqual([true, true, false]);
    expect([hasVmPower, hasVmImages, hasContainerImages].map((g) => g(fake('docker')))).toEqual([false, false, true]);
    // a method of the same name is not a declaration
    expect(hasVmPower(fake('process', { action: async () => undefined }))).toBe(false);
    for (const e of DRIVER_REGISTRY) for (const cap of CAPABILITIES) expect(declaresCapability(e.name, cap)).toBe(e.capabilities.includes(cap));
  });

  it("isVmDriver (the control side's and the TUI's test) agrees with the vm-power declarations", () => {
    for (const e of DRIVER_REGISTRY) expect(isVmDriver(e.name), e.name).toBe(e.capabilities.includes('vm-power'));
    expect(isVmDriver('nope')).toBe(false);
  });

  it('a call needing a capability no open driver has fails with the message of the driver that would have it', () => {
    expect(unavailableMessage('vm-power')).toBe('libvirt is not available on this agent (no answer at qemu:///system, or @unraid/libvirt is not installed)');
    expect(unavailableMessage('vm-images')).toBe(unavailableMessage('vm-power'));
    expect(unavailableMessage('container-images')).toBe('docker is not available on this agent (no engine answered at FACTORY_DOCKER_HOST / DOCKER_HOST / /var/run/docker.sock)');
  });

  it('openDrivers opens what answers in registry order, and keeps the driver an entry keeps (told the new state)', async () => {
    const states: (string | undefined)[] = [];
    const kept = fake('libvirt', { setState: (s: string | undefined) => states.push(s) });
    const ctx: DriverContext = { workDir: os.tmpdir(), limits: 'none', log: () => undefined, state: 'st-0123456789ab' };
    const opened = await openDrivers(ctx, new Map([['libvirt', kept], ['process', fake('process')]]));
    expect(opened.get('process')).toBeInstanceOf(ProcessDriver);
    expect(opened.get('libvirt')).toBe(kept);
    expect(states).toEqual(['st-0123456789ab']);
    const order = [...opened.keys()];
    expect(order).toEqual(DRIVER_NAMES.filter((n) => order.includes(n)));
    for (const d of opened.values()) await d.close?.();
  });
});
