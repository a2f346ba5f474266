/**
 * The libvirt driver: VM tasks as libvirt domains on qcow2 overlays of the agent's base images. The
 * folder's README says which file does what; importers outside it use this index (and the control
 * side image-store.ts's manifest helpers).
 */
export { LibvirtDriver, type LibvirtDriverOptions } from './driver.js';
export { LIBVIRT_URI, libvirtMayAnswer } from './connection.js';
export { type RunTool } from './host-tool.js';
export { powerOf } from './power.js';
export { vmStoreRoot } from './store.js';
