/**
 * NODE_EXTRA_CA_CERTS, deferred. Node 20 reads and parses the file that variable names when a
 * process starts, before any of its code runs: with Debian's CA bundle that is ~30 ms of a 43 ms
 * start on the machines we measured. factory itself makes no TLS connections, so bin/factory (and
 * the local transport, for a child-process executor) starts Node without the variable and passes
 * its value along as FACTORY_NODE_EXTRA_CA_CERTS; restoreDeferredEnv puts it back into
 * process.env at once, so what factory runs with its environment (qemu-img, virsh, a child-process
 * executor's tools) sees it as the operator set it. Tasks get their own clean environment anyway.
 */

/** DEFERRED_ENV maps each deferred variable to the name it travels under. */
export const DEFERRED_ENV = { NODE_EXTRA_CA_CERTS: 'FACTORY_NODE_EXTRA_CA_CERTS' } as const;

/** restoreDeferredEnv moves each deferred variable back to its own name (in place) and returns env. */
export function restoreDeferredEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return moveVariables(env, Object.entries(DEFERRED_ENV).map(([name, carrier]) => [carrier, name]));
}

/** deferEnv returns a copy of env for starting a Node process, with the deferred variables moved to their carriers. */
export function deferEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return moveVariables({ ...env }, Object.entries(DEFERRED_ENV));
}

/** moveVariables renames each variable of `moves` (from, to) that env sets, in place, and returns env. */
function moveVariables(env: NodeJS.ProcessEnv, moves: [from: string, to: string][]): NodeJS.ProcessEnv {
  for (const [from, to] of moves) {
    const v = env[from];
    if (v === undefined) continue;
    delete env[from];
    env[to] = v;
  }
  return env;
}
