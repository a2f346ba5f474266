/**
 * What only some drivers do, beyond the Driver interface: each capability is an interface of methods
 * and a type guard. A driver declares its capabilities on its registry entry (registry.ts); the
 * guards read that declaration, and test/executors/driver-registry.test.ts checks that a driver's
 * class has the methods of every capability it declares, and declares every capability it has.
 * The executor answers a call that needs a capability with the first open driver that declares it.
 */
import type { VmAction, VmActionResult, VmImageInfo, VmImageManifest } from '../../protocol/vm.js';
import type { ImageEngine } from '../images.js';
import type { Driver } from './driver.js';
import { declaresCapability } from './registry.js';

/** VmPower is the `vm-power` capability: power actions on one VM (`vm-action`: factory vm start | stop | reboot | force-off | image). */
export interface VmPower {
  /** action runs a power action (or makes an image of a shut off VM) and reports the VM's power state after. */
  action(task: string, action: VmAction, opts?: { imageName?: string; timeoutMs?: number }): Promise<VmActionResult>;
}

/** VmImages is the `vm-images` capability: the agent's VM base image store (`vm-image-*`, `vm-images`: factory vm push). */
export interface VmImages {
  /** imageHas tells whether the store holds the image with this id. */
  imageHas(id: string): boolean;
  /** imagePut stores one chunk (base64) of an image upload. */
  imagePut(id: string, file: string, offset: number, data: string): { received: number };
  /** imageCommit verifies an uploaded image and names it. */
  imageCommit(id: string, name: string, manifest: VmImageManifest): Promise<{ id: string; name: string }>;
  /** imageList lists the store's images. */
  imageList(): VmImageInfo[];
}

/** ContainerImages is the `container-images` capability: an engine that reports and loads images (`image-inspect`, `image-load`: factory image push). */
export type ContainerImages = ImageEngine;

/** CapabilityInterfaces maps each capability to its interface. */
export interface CapabilityInterfaces {
  'vm-power': VmPower;
  'vm-images': VmImages;
  'container-images': ContainerImages;
}

/** Capability names what a driver does beyond the Driver interface. */
export type Capability = keyof CapabilityInterfaces;

/** CAPABILITY_METHODS lists the methods of each capability's interface, for the registry's test. */
export const CAPABILITY_METHODS = {
  'vm-power': ['action'],
  'vm-images': ['imageHas', 'imagePut', 'imageCommit', 'imageList'],
  'container-images': ['imageInfo', 'loadArchive'],
} as const satisfies { readonly [C in Capability]: readonly (keyof CapabilityInterfaces[C])[] };

/** UnlistedCapabilityMethods is every interface method missing from CAPABILITY_METHODS: never, which the registry's test checks. */
export type UnlistedCapabilityMethods = { [C in Capability]: Exclude<keyof CapabilityInterfaces[C], (typeof CAPABILITY_METHODS)[C][number]> }[Capability];

/** hasVmPower tells whether a driver declares the vm-power capability. */
export function hasVmPower(driver: Driver): driver is Driver & VmPower {
  return declaresCapability(driver.name, 'vm-power');
}

/** hasVmImages tells whether a driver declares the vm-images capability. */
export function hasVmImages(driver: Driver): driver is Driver & VmImages {
  return declaresCapability(driver.name, 'vm-images');
}

/** hasContainerImages tells whether a driver declares the container-images capability. */
export function hasContainerImages(driver: Driver): driver is Driver & ContainerImages {
  return declaresCapability(driver.name, 'container-images');
}
