/** The process driver: ProcessDriver, and the pieces of it that the executor and the tests use. */
export { ProcessDriver, SHIM_SCRIPT } from './process-driver.js';
export { PROCESS_SPEC_CHECKS, resolveCommand } from './command.js';
export { isAlive, procStat } from './procfs.js';
export type { TaskMarker } from './task-files.js';
