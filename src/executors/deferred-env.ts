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
  for (const [name, carrier] of Object.entries(DEFERRED_ENV)) {
    const v = env[carrier];
    if (v === undefined) continue;
    delete env[carrier];
    env[name] = v;
  }
  return env;
}

/** deferEnv returns a copy of env for starting a Node process, with the deferred variables moved to their carriers. */
export function deferEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [name, carrier] of Object.entries(DEFERRED_ENV)) {
    const v = out[name];
    if (v === undefined) continue;
    delete out[name];
    out[carrier] = v;
  }
  return out;
}
