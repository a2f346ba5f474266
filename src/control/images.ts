/**
 * `factory image push IMAGE`: ship an image from the control host's Docker engine to the agents'
 * engines without a registry. The image is saved once (`docker save` through the engine API) to a
 * temp archive whose sha256 and size are computed; each agent is asked whether it already has the
 * image with the same id (then it is skipped), else the archive goes over the executor protocol in
 * base64 chunks (so it works over any transport), and the agent loads it and checks the image id.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import pLimit from 'p-limit';
import { FactoryError } from '../errors.js';
import { connectDocker, dockerEndpoint, describeEndpoint, engineMessage, engineStatusCode } from '../executors/drivers/docker-engine.js';
import { resolveInventory } from '../spec/index.js';
import { stateOf } from './state-handle.js';
import type { ExecutorClient } from '../transport/client.js';
import { AgentPool, inventoryAgents } from './agents.js';

/** IMAGE_CHUNK_BYTES is the raw size of one image-load chunk (base64 makes it ~5.3 MiB, under the 16 MiB line limit). */
export const IMAGE_CHUNK_BYTES = 4 * 1024 * 1024;

/** SavedImage is an image saved to a local archive: its id (sha256:… of its config), archive digest and size. */
export interface SavedImage {
  image: string;
  id: string;
  file: string;
  sha256: string;
  size: number;
  /** remove deletes the archive. */
  remove(): void;
}

/** AgentPushResult is what happened on one agent. */
export interface AgentPushResult {
  agent: string;
  /** action: `skipped` (already has the same id), `loaded`, or `failed`. */
  action: 'skipped' | 'loaded' | 'failed';
  id?: string;
  bytes?: number;
  ms?: number;
  error?: string;
}

/** ImagePushResult is the `image push --json` document. */
export interface ImagePushResult {
  image: string;
  id: string;
  sha256?: string;
  size?: number;
  agents: AgentPushResult[];
  ok: boolean;
}

/** saveImage writes `docker save IMAGE` from the given engine to a temp archive and hashes it. */
export async function saveImage(docker: Docker, image: string): Promise<SavedImage> {
  let id: string;
  try {
    id = (await docker.getImage(image).inspect()).Id;
  } catch (err) {
    if (engineStatusCode(err) === 404) {
      throw new FactoryError(`image ${image} is not in the local docker engine`, { code: 'E_IMAGE_MISSING', hint: `docker load, docker import or docker build it here first` });
    }
    throw new FactoryError(`inspect image ${image}: ${engineMessage(err)}`, { code: 'E_DOCKER', cause: err });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-image-'));
  const file = path.join(dir, 'image.tar');
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const hash = createHash('sha256');
    let size = 0;
    const stream = await docker.getImage(image).get();
    stream.on('data', (d: Buffer) => {
      hash.update(d);
      size += d.length;
    });
    await pipeline(stream, fs.createWriteStream(file));
    return { image, id, file, sha256: hash.digest('hex'), size, remove };
  } catch (err) {
    remove();
    if (err instanceof FactoryError) throw err;
    throw new FactoryError(`docker save ${image}: ${engineMessage(err)}`, { code: 'E_DOCKER', cause: err });
  }
}

/** pushToAgent ships a saved image to one agent, unless it already has the image with the same id. */
export async function pushToAgent(client: ExecutorClient, saved: SavedImage, opts: { force?: boolean; chunkBytes?: number; progress?: (line: string) => void } = {}): Promise<AgentPushResult> {
  const agent = client.agent;
  const started = Date.now();
  try {
    if (!opts.force) {
      const have = await client.imageInspect(saved.image);
      if (have.present && have.id === saved.id) return { agent, action: 'skipped', id: have.id, ms: Date.now() - started };
    }
    const chunk = opts.chunkBytes ?? IMAGE_CHUNK_BYTES;
    const fd = fs.openSync(saved.file, 'r');
    try {
      const buf = Buffer.alloc(chunk);
      let offset = 0;
      let lastReport = 0;
      for (;;) {
        const n = fs.readSync(fd, buf, 0, chunk, offset);
        const done = offset + n >= saved.size;
        const r = await client.imageLoad({
          image: saved.image,
          imageId: saved.id,
          sha256: saved.sha256,
          size: saved.size,
          offset,
          data: buf.subarray(0, n).toString('base64'),
          done,
        });
        offset += n;
        if (done) {
          return { agent, action: 'loaded', id: r.id, bytes: saved.size, ms: Date.now() - started };
        }
        if (n === 0) throw new FactoryError(`${saved.file} is shorter than ${saved.size} bytes`, { code: 'E_IMAGE_UPLOAD' });
        if (Date.now() - lastReport > 2000) {
          lastReport = Date.now();
          opts.progress?.(`agent ${agent}: ${Math.floor((offset / saved.size) * 100)}% of ${saved.image}`);
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return { agent, action: 'failed', error: String((err as Error)?.message ?? err).replace(/^agent [^:]+: /, ''), ms: Date.now() - started };
  }
}

/** ImagePushOptions select the image, the agents and the state/inventory to find them. */
export interface ImagePushOptions {
  image: string;
  stateDir: string;
  inventoryPath?: string;
  /** agents limits the push to these agent names (default: every agent of the inventory). */
  agents?: string[];
  /** force sends the image even to agents that already have it. */
  force?: boolean;
  progress?: (line: string) => void;
}

/** pushImage saves the image from the control host's engine and pushes it to the agents in parallel. */
export async function pushImage(opts: ImagePushOptions): Promise<ImagePushResult> {
  const inventory = await resolveInventory(opts.inventoryPath);
  const agents = inventoryAgents(inventory, opts.agents);
  if (opts.agents) {
    const unknown = opts.agents.filter((a) => !inventory.agents.some((x) => x.name === a));
    if (unknown.length) throw new FactoryError(`no agent ${unknown.join(', ')} in the inventory ${inventory.file}`, { code: 'E_AGENT_UNKNOWN' });
  }
  const endpoint = dockerEndpoint();
  const docker = await connectDocker(endpoint);
  opts.progress?.(`saving ${opts.image} from ${describeEndpoint(endpoint)}`);
  const saved = await saveImage(docker, opts.image);
  try {
    opts.progress?.(`${opts.image}: ${saved.id.slice(0, 19)}, ${saved.size} bytes, sha256 ${saved.sha256.slice(0, 12)}`);
    const state = await stateOf(opts.stateDir);
    const pool = await AgentPool.connect(agents, { stateDir: state.dir, stateId: state.id, settings: inventory.settings });
    try {
      const results: AgentPushResult[] = [];
      for (const [name, f] of pool.failed) results.push({ agent: name, action: 'failed', error: `unreachable: ${f.error}` });
      const limit = pLimit(4);
      await Promise.all(
        [...pool.connected.values()].map((c) =>
          limit(async () => {
            const r = await pushToAgent(c.client, saved, { force: opts.force, progress: opts.progress });
            opts.progress?.(`agent ${r.agent}: ${r.action}${r.error ? `: ${r.error}` : ''}`);
            results.push(r);
          }),
        ),
      );
      results.sort((a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0));
      return { image: opts.image, id: saved.id, sha256: saved.sha256, size: saved.size, agents: results, ok: results.every((r) => r.action !== 'failed') };
    } finally {
      await pool.close();
    }
  } finally {
    saved.remove();
  }
}
