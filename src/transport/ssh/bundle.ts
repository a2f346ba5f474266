/**
 * The executor program the SSH transport puts on agents: the built one-file bundle and its content
 * hash, the docker driver's separate file, and the content-addressed path they take on the agent.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FactoryError } from '../../errors.js';
import { findPackageRoot } from '../local.js';

/** ExecutorBundle is the one-file executor program and its content hash. */
export interface ExecutorBundle {
  path: string;
  content: Buffer;
  hash: string;
  /**
   * docker is the docker driver's own file (dockerode is most of the executor's weight), which the
   * executor imports from next to itself only when a docker engine answers. It is uploaded only to
   * agents that look like they have docker (a socket at /var/run/docker.sock, or DOCKER_HOST /
   * FACTORY_DOCKER_HOST set). Its content-addressed name is baked into the executor.
   */
  docker?: { name: string; path: string };
}

let cachedBundle: ExecutorBundle | undefined;

/**
 * executorBundle reads the built bundle once and returns it with its sha256 (first 16 hex digits),
 * and the docker driver's file named by dist/executor.bundle.json (read only when uploaded).
 */
export function executorBundle(root: string = findPackageRoot()): ExecutorBundle {
  if (cachedBundle) return cachedBundle;
  const p = path.join(root, 'dist', 'executor.bundle.mjs');
  let content: Buffer;
  try {
    content = fs.readFileSync(p);
  } catch {
    throw new FactoryError(`executor bundle not built: run npm run build (missing ${p})`, { code: 'E_NOT_BUILT', hint: 'npm run build' });
  }
  let docker: ExecutorBundle['docker'];
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'dist', 'executor.bundle.json'), 'utf8')) as { docker?: unknown };
    if (typeof manifest.docker === 'string' && /^executor-docker-[0-9a-f]{16}\.mjs$/.test(manifest.docker) && content.includes(manifest.docker)) {
      docker = { name: manifest.docker, path: path.join(root, 'dist', manifest.docker) };
    }
  } catch {
    /* an older build without a separate docker driver */
  }
  cachedBundle = { path: p, content, hash: createHash('sha256').update(content).digest('hex').slice(0, 16), ...(docker ? { docker } : {}) };
  return cachedBundle;
}

/** remoteExecutorPath is the executor's content-addressed path, relative to the agent user's home. */
export function remoteExecutorPath(hash: string): string {
  return `.factory/executor-${hash}.mjs`;
}

/** DockerDriverFile is the docker driver's file of a bundle: its name, its size and its content (read on demand). */
export interface DockerDriverFile {
  name: string;
  size: number;
  content: () => Buffer;
}

const fileCache = new Map<string, Buffer>();
const fileSizes = new Map<string, number>();

function readCached(file: string): Buffer {
  let b = fileCache.get(file);
  if (!b) {
    b = fs.readFileSync(file);
    fileCache.set(file, b);
  }
  return b;
}

/** dockerDriverFile is the docker driver's file of the bundle with its size (statted once), if it was built. */
export function dockerDriverFile(bundle: ExecutorBundle): DockerDriverFile | undefined {
  const d = bundle.docker;
  if (!d) return undefined;
  let size = fileSizes.get(d.path);
  if (size === undefined) {
    try {
      size = fs.statSync(d.path).size;
    } catch {
      return undefined; // not built: the executor reports docker as unavailable, the agent still works
    }
    fileSizes.set(d.path, size);
  }
  return { name: d.name, size, content: () => readCached(d.path) };
}
