/**
 * The driver registry: every driver an executor may offer, as one entry each — its name, what it can
 * do beyond the Driver interface (capabilities.ts), a probe (may this host run it?) and how to make it.
 * A new driver is its folder (or file) plus one entry here, and its name in DRIVER_NAMES
 * (src/protocol/drivers.ts). On hello the executor opens every entry whose probe answers, all at once
 * and in this order, and reports their names as the agent's drivers.
 *
 * The docker driver is imported only once its probe answered: its module carries dockerode, and the
 * SSH bundle keeps it in a second file that agents without docker never load
 * (scripts/bundle-executor.mjs splits at this dynamic import).
 */
import type { DriverName } from '../../protocol/drivers.js';
import { dockerAnswers } from '../discovery.js';
import type { Capability } from './capabilities.js';
import type { DockerDriver } from './docker.js';
import type { Driver, DriverContext } from './driver.js';
import { LibvirtDriver, libvirtMayAnswer } from './libvirt/index.js';
import { ProcessDriver } from './process/index.js';

/** DriverClass is a driver's class as the registry hands it out: what its instances have. */
export interface DriverClass<D extends Driver> {
  readonly prototype: D;
}

/** DriverEntry is one driver of the registry. */
export interface DriverEntry<D extends Driver = Driver> {
  /** name is the driver's name in plans, run specs and registrations (one of DRIVER_NAMES). */
  readonly name: DriverName;
  /** capabilities are what the driver does beyond the Driver interface; its class has their methods. */
  readonly capabilities: readonly Capability[];
  /** unavailable is the error of a call needing one of these capabilities on an agent where this driver is not open. */
  readonly unavailable?: string;
  /** probe tells, cheaply and without loading the driver, whether this host may run it. */
  probe(): Promise<boolean>;
  /** driver loads the driver's class. */
  driver(): Promise<DriverClass<D>>;
  /** open makes the driver for a session once the probe answered; undefined (the reason logged) when it cannot run after all. */
  open(ctx: DriverContext): Promise<D | undefined>;
  /** keep, when set, keeps the driver an earlier hello opened (told the new session's context) instead of probing and opening again. */
  keep?(driver: D, ctx: DriverContext): void;
}

const loadDocker = async () => (await import('./docker.js')).DockerDriver;

const processEntry: DriverEntry<ProcessDriver> = {
  name: 'process',
  capabilities: [],
  probe: async () => true,
  driver: async () => ProcessDriver,
  open: async (ctx) => new ProcessDriver(ctx),
};

const dockerEntry: DriverEntry<DockerDriver> = {
  name: 'docker',
  capabilities: ['container-images'],
  unavailable: 'docker is not available on this agent (no engine answered at FACTORY_DOCKER_HOST / DOCKER_HOST / /var/run/docker.sock)',
  probe: () => dockerAnswers(),
  driver: loadDocker,
  async open(ctx) {
    try {
      return await (await loadDocker()).create(ctx);
    } catch (err) {
      ctx.log(`executor: a docker engine answers but the docker driver cannot load: ${(err as Error).message}`);
      return undefined;
    }
  },
};

const libvirtEntry: DriverEntry<LibvirtDriver> = {
  name: 'libvirt',
  capabilities: ['vm-power', 'vm-images'],
  unavailable: 'libvirt is not available on this agent (no answer at qemu:///system, or @unraid/libvirt is not installed)',
  probe: async () => libvirtMayAnswer(),
  driver: async () => LibvirtDriver,
  open: (ctx) => LibvirtDriver.open(ctx),
  // the connection to libvirtd outlives a session
  keep: (driver, ctx) => driver.setState(ctx.state),
};

/** DRIVER_REGISTRY is every driver, in the order of DRIVER_NAMES. */
export const DRIVER_REGISTRY: readonly DriverEntry[] = [processEntry, dockerEntry, libvirtEntry];

/** driverEntry is the registry's entry of a driver name. */
export function driverEntry(name: DriverName): DriverEntry {
  const e = DRIVER_REGISTRY.find((d) => d.name === name);
  if (!e) throw new Error(`driver ${name} is in DRIVER_NAMES but not in the registry`);
  return e;
}

/** declaresCapability tells whether the driver of this name declares the capability on its entry. */
export function declaresCapability(name: DriverName, capability: Capability): boolean {
  return DRIVER_REGISTRY.some((d) => d.name === name && d.capabilities.includes(capability));
}

/** unavailableMessage is the error of a call that needs a capability no open driver has: the message of the first entry declaring it. */
export function unavailableMessage(capability: Capability): string {
  return DRIVER_REGISTRY.find((d) => d.capabilities.includes(capability))?.unavailable ?? `no driver on this agent has the ${capability} capability`;
}

/**
 * openDrivers opens, all at once, every driver whose probe answers, and returns them by name in the
 * registry's order. A driver of `previous` (the last hello's) whose entry keeps it is kept as is.
 * Each driver gets its own copy of ctx; a probe or open that throws leaves the driver out (logged).
 */
export async function openDrivers(ctx: DriverContext, previous: ReadonlyMap<string, Driver> = new Map()): Promise<Map<DriverName, Driver>> {
  const opened = await Promise.all(
    DRIVER_REGISTRY.map(async (e): Promise<Driver | undefined> => {
      const prev = previous.get(e.name);
      if (prev && e.keep) {
        e.keep(prev, ctx);
        return prev;
      }
      try {
        return (await e.probe()) ? await e.open({ ...ctx }) : undefined;
      } catch (err) {
        ctx.log(`executor: ${e.name} driver unavailable: ${(err as Error).message}`);
        return undefined;
      }
    }),
  );
  const out = new Map<DriverName, Driver>();
  DRIVER_REGISTRY.forEach((e, i) => {
    const d = opened[i];
    if (d) out.set(e.name, d);
  });
  return out;
}
