/**
 * The docker driver: runs a task as a container of the agent's Docker engine (dockerode over the
 * engine's socket). The engine enforces the limits (NanoCpus, Memory, PidsLimit), runs the health
 * check and restarts crashed containers per the task's restart policy; labels on the container name
 * the factory task, so a new executor finds and adopts what runs (the executor keeps no state).
 *
 *   name    factory-<scope>-<plan>.<group>.<index>_<8 hex of the state id>   scope = 8 hex digits of sha256(workDir)
 *   labels  factory.task, factory.plan, factory.group, factory.project, factory.spec-hash,
 *           factory.scope, factory.restart, factory.resources (JSON), factory.stop-grace-ms, factory.state
 *
 * Networking: `NetworkMode: none` unless the task asks for ports; then `host` (the ports are static
 * host ports in the scheduler's model, so host networking is exactly what was scheduled), or, with
 * `FACTORY_DOCKER_PORTS_NETWORK=bridge` on an engine that has the default bridge, `bridge` with each
 * port published as the same host port.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type Docker from 'dockerode';
import { FactoryError } from '../../errors.js';
import type { ImageInfo, RestartPolicy, TaskRunSpec, TaskStatus } from '../../protocol/messages.js';
import { stateSuffix, type Driver, type DriverContext, type LogOptions, type StopOptions } from './driver.js';
import { connectDocker, dockerEndpoint, engineMessage, engineStatusCode } from './docker-engine.js';
import { dockerHealthcheck, taskHealthOf } from './docker-health.js';
import { DockerLogDemuxer } from './docker-logs.js';
import { checkNotTooLate, checkRunSpec, hasSpecHash, type SpecCheck } from './shared/run-spec.js';
import { signalOfExitStatus } from './shared/signals.js';
import { taskDirName } from './shared/task-id.js';
import { KeyedQueue } from './keyed-queue.js';

/** LABELS are the container labels that tie a container to its factory task. */
export const LABELS = {
  task: 'factory.task',
  plan: 'factory.plan',
  group: 'factory.group',
  project: 'factory.project',
  specHash: 'factory.spec-hash',
  scope: 'factory.scope',
  restart: 'factory.restart',
  resources: 'factory.resources',
  stopGraceMs: 'factory.stop-grace-ms',
  state: 'factory.state',
} as const;

/** DEFAULT_PIDS_LIMIT caps a container's processes when its task asks for no `pids` scalar (env FACTORY_DOCKER_PIDS_LIMIT overrides). */
export const DEFAULT_PIDS_LIMIT = 4096;

/** scopeOf is the short hash of a workDir that keeps the containers of different factory states apart on one engine. */
export function scopeOf(workDir: string): string {
  return createHash('sha256').update(workDir).digest('hex').slice(0, 8);
}

/**
 * containerName derives a task's container name from its id: `factory-<scope>-<plan>.<group>.<index>`,
 * plus `_<first 8 hex of the state id>` for a task of a state (legacy containers have no suffix).
 */
export function containerName(task: string, scope: string, state?: string): string {
  return `factory-${scope}-${taskDirName(task)}${stateSuffix(state)}`;
}

/** dockerRestartPolicy maps a group's restart policy to the engine's: always → unless-stopped, on-failure, never → no. */
export function dockerRestartPolicy(p: RestartPolicy | undefined): Docker.HostRestartPolicy {
  if (p === 'never') return { Name: 'no' };
  if (p === 'on-failure') return { Name: 'on-failure', MaximumRetryCount: 0 };
  return { Name: 'unless-stopped' };
}

/** pidsLimitOf is the task's `pids` scalar when it asks for one, else FACTORY_DOCKER_PIDS_LIMIT or DEFAULT_PIDS_LIMIT. */
export function pidsLimitOf(spec: TaskRunSpec, env: NodeJS.ProcessEnv = process.env): number {
  const asked = spec.resources?.scalars?.pids;
  if (typeof asked === 'number' && asked > 0) return Math.floor(asked);
  const fromEnv = Number(env.FACTORY_DOCKER_PIDS_LIMIT);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_PIDS_LIMIT;
}

/** missingImageMessage is the error of a task whose image the agent's engine does not have. */
export function missingImageMessage(image: string, agent: string): string {
  return `image ${image} not present on agent ${agent}: run factory image push ${image}`;
}

/** createOptionsOf builds the engine's container-create body for a task (pure; exported for tests). */
export function createOptionsOf(spec: TaskRunSpec, scope: string, env: NodeJS.ProcessEnv = process.env, state?: string): Docker.ContainerCreateOptions {
  const ports = spec.resources?.ports ?? [];
  const bridge = ports.length > 0 && env.FACTORY_DOCKER_PORTS_NETWORK === 'bridge';
  const mem = Math.floor(spec.resources?.mem ?? 0);
  const cpus = spec.resources?.cpus ?? 0;
  const labels: Record<string, string> = {
    [LABELS.task]: spec.task,
    [LABELS.plan]: spec.labels.plan,
    [LABELS.group]: spec.labels.group,
    [LABELS.project]: spec.labels.project,
    [LABELS.specHash]: spec.specHash,
    [LABELS.scope]: scope,
    [LABELS.restart]: spec.restart ?? 'always',
    [LABELS.resources]: JSON.stringify(spec.resources ?? {}),
    [LABELS.stopGraceMs]: String(spec.stopGraceMs ?? 10_000),
    ...(state ? { [LABELS.state]: state } : {}),
  };
  const hostConfig: Docker.HostConfig = {
    NetworkMode: ports.length === 0 ? 'none' : bridge ? 'bridge' : 'host',
    RestartPolicy: dockerRestartPolicy(spec.restart),
    PidsLimit: pidsLimitOf(spec, env),
    ...(cpus > 0 ? { NanoCpus: Math.round(cpus * 1e9) } : {}),
    ...(mem > 0 ? { Memory: mem, MemorySwap: mem } : {}),
    ...(bridge ? { PortBindings: Object.fromEntries(ports.map((p) => [`${p}/tcp`, [{ HostPort: String(p) }]])) } : {}),
  };
  return {
    name: containerName(spec.task, scope, state),
    Image: spec.image,
    ...(spec.command.length > 0 ? { Cmd: spec.command } : {}),
    Env: Object.entries({ ...spec.env, FACTORY_TASK: spec.task }).map(([k, v]) => `${k}=${v}`),
    ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
    Labels: labels,
    ...(bridge ? { ExposedPorts: Object.fromEntries(ports.map((p) => [`${p}/tcp`, {}])) } : {}),
    ...(spec.health ? { Healthcheck: dockerHealthcheck(spec.health) } : {}),
    StopTimeout: Math.ceil((spec.stopGraceMs ?? 10_000) / 1000),
    HostConfig: hostConfig,
  };
}

function engineTime(t: string | undefined): string | undefined {
  return t && !t.startsWith('0001-') ? t : undefined;
}

function parseJson<T>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** statusOfContainer turns an engine inspect document into a TaskStatus (pure; exported for tests). */
export function statusOfContainer(info: Docker.ContainerInspectInfo): TaskStatus {
  const labels = info.Config?.Labels ?? {};
  const st = info.State;
  const s: TaskStatus = {
    task: labels[LABELS.task] ?? info.Name.replace(/^\//, ''),
    driver: 'docker',
    state: 'unknown',
    specHash: labels[LABELS.specHash] ?? '',
    labels: { plan: labels[LABELS.plan] ?? '', group: labels[LABELS.group] ?? '', project: labels[LABELS.project] ?? '' },
    image: info.Config?.Image,
    containerId: info.Id.slice(0, 12),
    ...(info.RestartCount > 0 ? { restarts: info.RestartCount } : {}),
    ...(labels[LABELS.state] ? { stateId: labels[LABELS.state] } : {}),
  };
  const resources = parseJson<TaskStatus['resources']>(labels[LABELS.resources]);
  if (resources && typeof resources === 'object' && typeof resources.cpus === 'number') s.resources = resources;
  const started = engineTime(st.StartedAt);
  if (started) s.startedAt = started;
  const health = taskHealthOf(st.Health?.Status);
  if (health) s.health = health;
  const exit = () => {
    const finished = engineTime(st.FinishedAt);
    if (finished) s.finishedAt = finished;
    if (st.OOMKilled) {
      s.signal = 'SIGKILL';
      s.error = 'killed by the kernel: out of memory (container memory limit)';
    } else {
      const signal = signalOfExitStatus(st.ExitCode);
      if (signal) s.signal = signal;
      else s.exitCode = st.ExitCode;
    }
    if (st.Error) s.error = st.Error;
  };
  switch (st.Status) {
    case 'running':
    case 'paused':
      s.state = 'running';
      if (st.Pid > 0) s.pid = st.Pid;
      if (health === 'unhealthy' && labels[LABELS.restart] !== 'never') {
        // Not live: the next apply restarts it (restart policy always / on-failure).
        s.state = 'failed';
        const last = st.Health?.Log?.at(-1);
        s.error = `unhealthy: ${st.Health?.FailingStreak ?? 0} failed checks${last ? ` (exit ${last.ExitCode}${last.Output.trim() ? `: ${last.Output.trim().slice(0, 200)}` : ''})` : ''}`;
      }
      break;
    case 'restarting':
      s.state = 'pending';
      exit();
      s.error = `restarting (restart #${info.RestartCount}) after ${s.signal ? `signal ${s.signal}` : `exit code ${st.ExitCode}`}${s.error ? `: ${s.error}` : ''}`;
      break;
    case 'created':
      if (st.Error) {
        s.state = 'failed';
        s.error = st.Error;
      } else {
        s.state = 'pending';
      }
      break;
    case 'exited':
      exit();
      s.state = st.ExitCode === 0 && !st.OOMKilled ? 'finished' : 'failed';
      break;
    case 'dead':
      exit();
      s.state = 'failed';
      break;
    case 'removing':
      s.state = 'stopped';
      break;
    default:
      s.state = 'unknown';
  }
  return s;
}

/** DOCKER_SPEC_CHECKS are what a container task's run request must satisfy: an image, a command argv (empty: the image's default). */
export const DOCKER_SPEC_CHECKS: readonly SpecCheck[] = [
  (spec) => (typeof spec.image !== 'string' || spec.image.trim() === '' ? 'a container needs an image' : undefined),
  (spec) => (!Array.isArray(spec.command) || spec.command.some((a) => typeof a !== 'string' || a.includes('\0')) ? 'command must be an array of strings' : undefined),
  hasSpecHash,
];

/** DockerDriver runs tasks as labelled containers of the agent's Docker engine. */
export class DockerDriver implements Driver {
  /** name is always 'docker'. */
  readonly name = 'docker' as const;
  /** scope is this workDir's short hash, in every container name and the `factory.scope` label. */
  readonly scope: string;
  private readonly queue = new KeyedQueue();

  constructor(
    private readonly ctx: DriverContext,
    /** docker is the engine client. */
    readonly docker: Docker,
  ) {
    this.scope = scopeOf(ctx.workDir);
  }

  /** create connects to the engine named by FACTORY_DOCKER_HOST / DOCKER_HOST (default /var/run/docker.sock). */
  static async create(ctx: DriverContext): Promise<DockerDriver> {
    return new DockerDriver(ctx, await connectDocker(dockerEndpoint()));
  }

  private get agent(): string {
    return this.ctx.agent ?? os.hostname();
  }


  private engineError(what: string, err: unknown): FactoryError {
    if (err instanceof FactoryError) return err;
    const code = (err as NodeJS.ErrnoException)?.code;
    const reason = code === 'ENOENT' || code === 'ECONNREFUSED' ? `the docker engine is not reachable (${code})` : engineMessage(err);
    return new FactoryError(`${what}: ${reason}`, { code: 'E_DOCKER', cause: err });
  }

  private async inspectByName(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (engineStatusCode(err) === 404) return undefined;
      throw this.engineError(`inspect container ${name}`, err);
    }
  }

  /** imageInfo says whether the engine has an image, and its id. */
  async imageInfo(image: string): Promise<ImageInfo> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return { image, present: true, id: info.Id };
    } catch (err) {
      if (engineStatusCode(err) === 404) return { image, present: false };
      throw this.engineError(`inspect image ${image}`, err);
    }
  }

  /** loadArchive loads a `docker save` archive into the engine (like `docker load`) and fails on any engine error. */
  async loadArchive(file: string): Promise<void> {
    let out: NodeJS.ReadableStream;
    try {
      out = await this.docker.loadImage(fs.createReadStream(file), { quiet: true });
    } catch (err) {
      throw this.engineError('docker load', err);
    }
    let text = '';
    await new Promise<void>((resolve, reject) => {
      out.on('data', (d: Buffer) => (text += d.toString()));
      out.on('end', resolve);
      out.on('error', reject);
    });
    for (const line of text.split('\n')) {
      const msg = parseJson<{ error?: string; errorDetail?: { message?: string } }>(line.trim());
      if (msg?.error) throw new FactoryError(`docker load: ${msg.errorDetail?.message ?? msg.error}`, { code: 'E_IMAGE_LOAD' });
    }
  }

  /**
   * ownContainer finds this session's container of a task: its state's (`…_<8 hex>`), else a legacy
   * one (no suffix, no `factory.state` label) while the state has none. Another state's is never found.
   */
  private async ownContainer(task: string): Promise<Docker.ContainerInspectInfo | undefined> {
    const own = await this.inspectByName(containerName(task, this.scope, this.ctx.state));
    if (own || !this.ctx.state) return own;
    const legacy = await this.inspectByName(containerName(task, this.scope));
    return legacy && !legacy.Config?.Labels?.[LABELS.state] ? legacy : undefined;
  }

  /** status reports one task's container, or undefined when the engine has none. */
  async status(task: string): Promise<TaskStatus | undefined> {
    const info = await this.ownContainer(task);
    return info ? statusOfContainer(info) : undefined;
  }

  /** inspect lists every container of this scope (label factory.scope) with its state and health. */
  async inspect(): Promise<TaskStatus[]> {
    let list: Docker.ContainerInfo[];
    try {
      list = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.scope}=${this.scope}`] } });
    } catch (err) {
      throw this.engineError('list containers', err);
    }
    const infos = await Promise.all(
      list.map(async (c) => {
        try {
          return await this.docker.getContainer(c.Id).inspect();
        } catch (err) {
          if (engineStatusCode(err) === 404) return undefined; // removed meanwhile
          throw this.engineError(`inspect container ${c.Id.slice(0, 12)}`, err);
        }
      }),
    );
    return infos
      .filter((i): i is Docker.ContainerInspectInfo => i !== undefined)
      .map(statusOfContainer)
      .sort((a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : 0));
  }

  /**
   * run is idempotent: the same task running with the same specHash is adopted (unless unhealthy with
   * a restart policy, then restarted); a dead one is started again; one with another specHash is
   * stopped and replaced. A missing image is a failed status with a clear error, not an exception.
   */
  async run(spec: TaskRunSpec): Promise<TaskStatus> {
    checkRunSpec(spec, DOCKER_SPEC_CHECKS);
    return this.queue.run(spec.task, () => this.createOrAdopt(spec, true));
  }

  /**
   * createOrAdopt creates the container first (the common case costs create + start + inspect); a
   * name conflict means the task's container exists: adopt, revive or replace it.
   */
  private async createOrAdopt(spec: TaskRunSpec, mayRetry: boolean): Promise<TaskStatus> {
    // only this state's own container: a legacy one of that id is adopted by nobody, its record decides
    const name = containerName(spec.task, this.scope, this.ctx.state);
    if (spec.notAfter !== undefined && Date.now() > spec.notAfter) {
      // too late to start: unless it started already (a start sent twice), nothing is created
      const existing = await this.inspectByName(name);
      if (existing && spec.once) return statusOfContainer(existing);
      checkNotTooLate(spec);
    }
    let id: string;
    try {
      id = (await this.docker.createContainer(createOptionsOf(spec, this.scope, process.env, this.ctx.state))).id;
    } catch (err) {
      const code = engineStatusCode(err);
      if (code === 404 && /no such image/i.test(engineMessage(err))) return this.failedStatus(spec, missingImageMessage(spec.image!, this.agent));
      if (code !== 409 || !mayRetry) return this.failedStatus(spec, `create container: ${engineMessage(err)}`);
      const existing = await this.inspectByName(name);
      // a run-once task (a job run) that exists is reported as it is: a start sent twice runs it once
      if (existing && spec.once) return statusOfContainer(existing);
      if (existing) {
        const same = existing.Config?.Labels?.[LABELS.specHash] === spec.specHash;
        if (same && existing.State.Status !== 'dead') return this.revive(existing, spec);
        this.ctx.log(`docker driver: ${spec.task}: ${same ? 'container is dead' : `spec changed (${existing.Config?.Labels?.[LABELS.specHash]} → ${spec.specHash})`}, replacing it`);
        await this.removeContainer(existing.Id, spec.stopGraceMs);
      }
      return this.createOrAdopt(spec, false);
    }
    return this.startAndReport(id, spec);
  }

  private async revive(info: Docker.ContainerInspectInfo, spec: TaskRunSpec): Promise<TaskStatus> {
    const c = this.docker.getContainer(info.Id);
    const status = statusOfContainer(info);
    if (info.Config?.Labels?.[LABELS.restart] !== (spec.restart ?? 'always')) {
      // The restart policy is not part of the spec hash: change it in place.
      await c.update({ RestartPolicy: dockerRestartPolicy(spec.restart) }).catch((err) => this.ctx.log(`docker driver: ${spec.task}: cannot update restart policy: ${engineMessage(err)}`));
    }
    if (info.State.Running || info.State.Restarting) {
      if (status.health !== 'unhealthy' || spec.restart === 'never') return status; // adopted as is
      this.ctx.log(`docker driver: ${spec.task}: unhealthy, restarting the container`);
      try {
        await c.restart({ t: Math.ceil(spec.stopGraceMs / 1000) });
      } catch (err) {
        return this.failedStatus(spec, `restart container: ${engineMessage(err)}`);
      }
      return this.report(info.Id);
    }
    return this.startAndReport(info.Id, spec);
  }

  private async startAndReport(id: string, spec: TaskRunSpec): Promise<TaskStatus> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (engineStatusCode(err) !== 304) {
        const s = await this.report(id).catch(() => undefined);
        const error = `start container: ${engineMessage(err)}`;
        return s ? { ...s, state: 'failed', error } : this.failedStatus(spec, error);
      }
    }
    return this.report(id);
  }

  private async report(id: string): Promise<TaskStatus> {
    try {
      return statusOfContainer(await this.docker.getContainer(id).inspect());
    } catch (err) {
      throw this.engineError(`inspect container ${id.slice(0, 12)}`, err);
    }
  }

  private failedStatus(spec: TaskRunSpec, error: string): TaskStatus {
    return {
      task: spec.task,
      driver: 'docker',
      state: 'failed',
      specHash: spec.specHash,
      labels: spec.labels,
      resources: spec.resources,
      image: spec.image,
      error,
    };
  }

  /** stopContainer is `docker stop -t grace` (whole seconds, rounded up); already stopped or gone is no error. */
  private async stopContainer(id: string, graceMs: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (err) {
      const code = engineStatusCode(err);
      if (code !== 304 && code !== 404) throw this.engineError(`stop container ${id.slice(0, 12)}`, err);
    }
  }

  private async removeContainer(id: string, graceMs: number): Promise<void> {
    await this.stopContainer(id, graceMs);
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const code = engineStatusCode(err);
      // 409: removal already in progress
      if (code !== 404 && code !== 409) throw this.engineError(`remove container ${id.slice(0, 12)}`, err);
    }
  }

  /** stop stops the container (SIGTERM, the grace period, SIGKILL — done by the engine) and by default removes it. */
  async stop(task: string, opts: StopOptions = {}): Promise<TaskStatus> {
    taskDirName(task);
    return this.queue.run(task, async () => {
      const info = await this.ownContainer(task);
      if (!info) return { task, driver: 'docker', state: 'stopped', specHash: '', labels: { plan: '', group: '', project: '' } };
      await this.stopContainer(info.Id, opts.graceMs ?? (Number(info.Config?.Labels?.[LABELS.stopGraceMs]) || 10_000));
      const after = await this.inspectByName(info.Id);
      const status: TaskStatus = { ...statusOfContainer(after ?? info), state: 'stopped', pid: undefined };
      if (opts.remove !== false) await this.removeContainer(info.Id, 0);
      return status;
    });
  }

  /** logs streams the container's output (demultiplexed stdout/stderr); tail counts lines of the selected streams together. */
  async logs(task: string, opts: LogOptions, onData: (stream: 'stdout' | 'stderr', data: string) => void, signal: AbortSignal): Promise<void> {
    const info = await this.ownContainer(task);
    if (!info) throw new FactoryError(`task ${task} not found`, { code: 'E_NOT_FOUND' });
    const c = this.docker.getContainer(info.Id);
    const base = {
      stdout: opts.stream !== 'stderr',
      stderr: opts.stream !== 'stdout',
      ...(opts.tail !== undefined && opts.tail >= 0 ? { tail: opts.tail } : {}),
    };
    const demux = new DockerLogDemuxer(onData);
    if (!opts.follow) {
      let buf: Buffer;
      try {
        buf = await c.logs({ ...base, follow: false });
      } catch (err) {
        throw this.engineError(`logs of ${task}`, err);
      }
      demux.push(Buffer.isBuffer(buf) ? buf : Buffer.from(buf as unknown as string));
      demux.end();
      return;
    }
    if (signal.aborted) return;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await c.logs({ ...base, follow: true });
    } catch (err) {
      throw this.engineError(`logs of ${task}`, err);
    }
    await new Promise<void>((resolve) => {
      const finish = () => {
        signal.removeEventListener('abort', onAbort);
        demux.end();
        resolve();
      };
      const onAbort = () => {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        finish();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (d: Buffer) => demux.push(d));
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', finish);
    });
  }
}
