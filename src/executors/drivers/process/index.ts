/** The process driver: ProcessDriver, and the pieces of it that the executor and the tests use. */
export { PROCESS_SPEC_CHECKS, ProcessDriver, SHIM_SCRIPT, resolveCommand } from './process-driver.js';
export { isAlive, procStat } from './procfs.js';
export type { TaskMarker } from './task-files.js';
