/**
 * src/spec: parse and validate plans and inventories. Everything else imports from here (and the
 * types from ./model.js).
 */
export * from './model.js';
export { parseMem, parseSize, parseDuration, SpecValueError, MEM_PATTERN, DURATION_PATTERN } from './units.js';
export type { ParseSizeOptions } from './units.js';
export { parseConstraint, matchConstraint, MAX_REGEX_LENGTH } from './constraints.js';
export { loadPlanFile, loadPlanText, loadPlans } from './load.js';
export { expandPlanPaths, MAX_SPEC_FILE_BYTES } from './read.js';
export { formatPath, MAX_ALIAS_COUNT } from './source.js';
export { DEFAULT_PROCESS_CPUS, DEFAULT_PROCESS_MEM, DEFAULT_STOP_GRACE_MS } from './plan-build.js';
export {
  loadInventoryFile,
  loadInventoryText,
  embeddedInventory,
  resolveInventory,
  EMBEDDED_INVENTORY_FILE,
  DEFAULT_INVENTORY_PATH,
} from './inventory.js';
export { planJsonSchema, inventoryJsonSchema, NAME_RE, NAME_MAX, MAX_COUNT } from './schema.js';
