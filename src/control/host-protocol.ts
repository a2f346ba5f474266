/**
 * Where the control host of a state listens: `<state>/control.sock` (the CLI, the fast path and the
 * host agree on it). Free of imports beyond node:path: the thin client bundles it.
 */
import path from 'node:path';

/** CONTROL_SOCKET is the control host's socket name inside the state directory. */
export const CONTROL_SOCKET = 'control.sock';

/** controlSocketPath is where the control host of a state directory listens. */
export function controlSocketPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), CONTROL_SOCKET);
}
