/**
 * The libvirt driver: VM tasks as libvirt domains on qcow2 overlays of the agent's base images. This
 * folder's README says which file does what; importers outside it use only this index.
 */
export { LIBVIRT_URI, LibvirtDriver, powerOf, vmStoreRoot, type LibvirtDriverOptions, type RunTool } from './driver.js';
