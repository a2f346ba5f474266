/**
 * The connection to libvirtd: a structural view of @unraid/libvirt (an optional native dependency,
 * loaded with import() from wherever it is installed), how the driver finds and opens it, and how
 * the binding's errors become FactoryErrors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FactoryError } from '../../../errors.js';
import type { DriverContext } from '../driver.js';
import type { RunTool } from './host-tool.js';

/** LIBVIRT_URI is the hypervisor the driver uses (FACTORY_LIBVIRT_URI overrides qemu:///system). */
export const LIBVIRT_URI = process.env.FACTORY_LIBVIRT_URI ?? 'qemu:///system';

/** LIBVIRT_SOCKET is the system daemon's socket; without it the driver is not offered. */
export const LIBVIRT_SOCKET = '/var/run/libvirt/libvirt-sock';

/** LIBVIRT_CONNECT_TIMEOUT_MS bounds the wait for libvirtd to accept a connection. */
export const LIBVIRT_CONNECT_TIMEOUT_MS = 5000;

/** LvDomain is the part of @unraid/libvirt's Domain the driver uses. */
export interface LvDomain {
  create(): Promise<void>;
  shutdown(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  undefine(): Promise<void>;
  getXMLDesc(flags?: number): Promise<string>;
  getInfo(): Promise<{ state: number }>;
  getName(): Promise<string>;
}

/** LvHypervisor is the part of @unraid/libvirt's Hypervisor (one connection) the driver uses. */
export interface LvHypervisor {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectListAllDomains(flags?: number): Promise<LvDomain[]>;
  domainDefineXML(xml: string): Promise<LvDomain>;
  domainLookupByName(name: string): Promise<LvDomain>;
}

/** Libvirt is what the driver's parts share: the open connection, its URI (for virsh) and how host tools run. */
export interface Libvirt {
  hv: LvHypervisor;
  uri: string;
  tool: RunTool;
}

/** libvirtError wraps an error of the binding (or a host tool) as E_LIBVIRT, saying what was being done. */
export function libvirtError(what: string, err: unknown): FactoryError {
  if (err instanceof FactoryError) return err;
  return new FactoryError(`${what}: ${(err as Error)?.message ?? String(err)}`, { code: 'E_LIBVIRT', cause: err });
}

/** isNotFound tells whether a binding error says the domain does not exist. */
export function isNotFound(err: unknown): boolean {
  return /not found|no domain with matching/i.test(String((err as Error)?.message ?? err));
}

type LibvirtModule = { Hypervisor: new (o: { uri: string }) => LvHypervisor };

/**
 * libvirtModuleDirs are the node_modules folders searched for @unraid/libvirt when a plain import
 * fails — the SSH transport's executor bundle travels alone, and a native addon cannot be bundled:
 * FACTORY_LIBVIRT_MODULE_DIR, `<workDir>/node_modules`, `~/.factory/node_modules`, then the global npm roots.
 */
export function libvirtModuleDirs(workDir: string): string[] {
  return [
    ...(process.env.FACTORY_LIBVIRT_MODULE_DIR ? [process.env.FACTORY_LIBVIRT_MODULE_DIR] : []),
    path.join(workDir, 'node_modules'),
    path.join(os.homedir(), '.factory', 'node_modules'),
    '/usr/local/lib/node_modules',
    '/usr/lib/node_modules',
  ];
}

async function loadLibvirtModule(workDir: string): Promise<LibvirtModule> {
  try {
    return (await import('@unraid/libvirt' as string)) as LibvirtModule;
  } catch (first) {
    for (const dir of libvirtModuleDirs(workDir)) {
      const pkgDir = path.join(dir, '@unraid', 'libvirt');
      let pkg: { main?: string; exports?: { '.'?: { import?: string } } };
      try {
        pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as typeof pkg;
      } catch {
        continue;
      }
      const entry = pkg.exports?.['.']?.import ?? pkg.main ?? 'index.js';
      return (await import(pathToFileURL(path.join(pkgDir, entry)).href)) as LibvirtModule;
    }
    throw new Error(`@unraid/libvirt cannot be loaded (${(first as Error).message.split('\n')[0]}); install it on the agent (npm install -g @unraid/libvirt, or in <workDir>/node_modules)`);
  }
}

/** libvirtMayAnswer is the driver's probe: false when the URI is the system daemon's and its socket is missing (nothing is loaded). */
export function libvirtMayAnswer(uri: string = LIBVIRT_URI): boolean {
  return uri !== 'qemu:///system' || fs.existsSync(LIBVIRT_SOCKET);
}

/**
 * connectLibvirt loads the binding and opens uri; undefined (with the reason logged) when the socket
 * is missing, @unraid/libvirt is not installed or the daemon does not answer within
 * LIBVIRT_CONNECT_TIMEOUT_MS.
 */
export async function connectLibvirt(ctx: DriverContext, uri: string): Promise<LvHypervisor | undefined> {
  if (!libvirtMayAnswer(uri)) return undefined;
  let mod: LibvirtModule;
  try {
    mod = await loadLibvirtModule(ctx.workDir);
  } catch (err) {
    ctx.log(`executor: libvirt driver unavailable: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  const hv = new mod.Hypervisor({ uri });
  // the timer is cleared once libvirt answers: left running it kept a finished CLI alive for 5 s
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      hv.connectOpen(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${LIBVIRT_CONNECT_TIMEOUT_MS / 1000} s`)), LIBVIRT_CONNECT_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    ctx.log(`executor: libvirt driver unavailable: ${uri}: ${(err as Error).message}`);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
  return hv;
}
