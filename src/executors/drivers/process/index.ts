/** The process driver: ProcessDriver, and the pieces of it that the executor and the tests use. */
export { ProcessDriver } from './process-driver.js';
export { SHIM_SCRIPT } from './shim.js';
export { PROCESS_SPEC_CHECKS, resolveCommand } from './command.js';
export { isAlive, procStat } from './procfs.js';
export type { TaskMarker } from './task-files.js';
