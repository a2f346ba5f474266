/**
 * Where the Docker engine is and whether it answers. Both the executor (docker driver, discovery)
 * and the control side (`factory image push`, which saves images from the local engine) use this.
 *
 * The endpoint comes from `FACTORY_DOCKER_HOST`, else `DOCKER_HOST`, else `/var/run/docker.sock`:
 * `unix:///path`, a bare `/path`, or `tcp://host:port` (plain HTTP; TLS is not supported).
 */
import type Docker from 'dockerode';
import { FactoryError } from '../../errors.js';

/** DEFAULT_DOCKER_SOCKET is the engine's socket when no environment variable names another. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** DockerEndpoint is how to reach an engine: a unix socket, or a host and port over plain HTTP. */
export type DockerEndpoint = { socketPath: string } | { host: string; port: number };

/** dockerEndpoint parses FACTORY_DOCKER_HOST / DOCKER_HOST (in that order) into an endpoint. */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  const raw = (env.FACTORY_DOCKER_HOST || env.DOCKER_HOST || '').trim();
  if (raw === '') return { socketPath: DEFAULT_DOCKER_SOCKET };
  if (raw.startsWith('unix://')) return { socketPath: raw.slice('unix://'.length) };
  if (raw.startsWith('/')) return { socketPath: raw };
  const m = raw.match(/^(?:tcp|http):\/\/\[?([^\]/]+?)\]?:(\d+)\/?$/);
  if (m) return { host: m[1]!, port: Number(m[2]) };
  throw new FactoryError(`unsupported docker endpoint ${JSON.stringify(raw)}: use unix:///path/to/docker.sock or tcp://host:port`, {
    code: 'E_DOCKER_ENDPOINT',
  });
}

/** describeEndpoint renders an endpoint for messages. */
export function describeEndpoint(e: DockerEndpoint): string {
  return 'socketPath' in e ? `unix://${e.socketPath}` : `tcp://${e.host}:${e.port}`;
}

/**
 * pingDocker asks the engine's `/_ping` with a plain HTTP request (no client library loaded), and
 * resolves true only for a 200 within timeoutMs; it never rejects.
 */
export async function pingDocker(endpoint: DockerEndpoint = safeEndpoint(), timeoutMs = 1000): Promise<boolean> {
  // node:http is loaded here, not at startup: executors on hosts without docker never need it
  const { default: http } = await import('node:http');
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish(false);
    }, timeoutMs);
    const req = http.request({ ...('socketPath' in endpoint ? { socketPath: endpoint.socketPath } : endpoint), path: '/_ping', method: 'GET' }, (res) => {
      res.resume();
      finish(res.statusCode === 200);
    });
    req.on('error', () => finish(false));
    req.end();
  });
}

function safeEndpoint(): DockerEndpoint {
  try {
    return dockerEndpoint();
  } catch {
    return { socketPath: DEFAULT_DOCKER_SOCKET };
  }
}

/** connectDocker loads dockerode (only when a docker feature is used) and returns a client for the endpoint. */
export async function connectDocker(endpoint: DockerEndpoint = dockerEndpoint()): Promise<Docker> {
  const { default: DockerCtor } = await import('dockerode');
  return new DockerCtor('socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port, protocol: 'http' });
}

/** engineStatusCode is the HTTP status of a dockerode error (404 for "no such container/image"), if any. */
export function engineStatusCode(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** engineMessage extracts the engine's own message from a dockerode error ("(HTTP code 404) no such image - …" → the part after the code). */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string };
  const fromJson = e?.json?.message;
  if (typeof fromJson === 'string' && fromJson) return fromJson;
  const msg = String(e?.message ?? err);
  return msg.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim() || msg;
}
