/**
 * The VM half of the executor protocol: power states, the per-VM options of a run spec, power
 * actions, and the manifest of a VM base image in an agent's image store.
 */

/** PowerState is a VM's power state as its agent reports it; 'imaging' while its disk becomes an image. */
export type PowerState = 'running' | 'shut off' | 'paused' | 'crashed' | 'imaging';

/** VmRunOptions are the VM-only parts of a TaskRunSpec: the subnet its NIC joins and its shared volumes. */
export interface VmRunOptions {
  /** subnet names the isolated network (one per subnet name on the agent) the VM's NIC joins. */
  subnet?: string;
  /** volumes name shared disks, created once on the agent and attached to every VM that lists them. */
  volumes?: string[];
}

/** VmAction is a power action on one VM (`factory vm start|stop|reboot|force-off|image`). */
export type VmAction = 'start' | 'stop' | 'reboot' | 'force-off' | 'image';

/** VM_ACTIONS lists every VmAction, for validation. */
export const VM_ACTIONS: readonly VmAction[] = ['start', 'stop', 'reboot', 'force-off', 'image'];

/** VM_IMAGE_FORMAT is the format tag of every image manifest. */
export const VM_IMAGE_FORMAT = 'factory-vm-image/1';

/** VM_IMAGE_FILES are the only files an image may hold: a qcow2 disk, and a kernel + initrd for direct kernel boot. */
export const VM_IMAGE_FILES = ['disk.qcow2', 'kernel', 'initrd'] as const;

/** VmImageFile is one of VM_IMAGE_FILES. */
export type VmImageFile = (typeof VM_IMAGE_FILES)[number];

/** VmImageManifest describes a base image: its files with their checksums, and the kernel command line. */
export interface VmImageManifest {
  format: typeof VM_IMAGE_FORMAT;
  /** files maps each file of the image to its sha256 (hex) and size in bytes; disk.qcow2 is required. */
  files: Partial<Record<VmImageFile, { sha256: string; size: number }>>;
  /** cmdline is the kernel command line for direct kernel boot (with kernel). */
  cmdline?: string;
  /** parent is the id of the image a VM was made from (images made by `vm image`). */
  parent?: string;
  createdAt?: string;
}

/** VmImageInfo is one image of an agent's store, with the names that point at it. */
export interface VmImageInfo {
  id: string;
  names: string[];
  manifest: VmImageManifest;
}

/** VmActionResult is the answer to a vm-action request. */
export interface VmActionResult {
  task: string;
  action: VmAction;
  power: PowerState;
  /** image is the id and name of the image an `image` action made. */
  image?: { id: string; name: string };
}
