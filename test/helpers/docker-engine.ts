/**
 * The setup the docker driver test files share: a private dockerd (a skip with the reason on a dev
 * machine, a failure under CI: see startDockerd), the test image built in it, a temp workDir for the
 * drivers, the docker task spec, and one stop() that ends what the file started.
 */
import fs from 'node:fs';
import type Docker from 'dockerode';
import type { TaskRunSpec } from '../../src/protocol/messages.js';
import { TEST_IMAGE, buildTestImage, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { makeSpec, tempDir } from '../executors/helpers.js';

/** dockerTaskSpec is a docker task running command in TEST_IMAGE (makeSpec's resources and grace); over replaces fields. */
export function dockerTaskSpec(task: string, command: string[], over: Partial<TaskRunSpec> = {}): TaskRunSpec {
  return makeSpec(task, command, { driver: 'docker', image: TEST_IMAGE, ...over });
}

/** DockerTestEngine is one docker test file's private engine and work folder. */
export class DockerTestEngine {
  private workDir: string | undefined;

  constructor(private readonly started: Dockerd | { skip: string }) {}

  /** skip is why the tests cannot run here, or undefined when the engine runs. */
  get skip(): string | undefined {
    return 'skip' in this.started ? this.started.skip : undefined;
  }

  /** engine is the running dockerd (only when skip is undefined). */
  get engine(): Dockerd {
    if ('skip' in this.started) throw new Error(`no docker engine: ${this.started.skip}`);
    return this.started;
  }

  /** prepare builds the test image and makes a temp workDir (prefix) for the drivers. */
  async prepare(prefix: string): Promise<{ docker: Docker; workDir: string }> {
    const docker = this.engine.docker;
    await buildTestImage(docker);
    this.workDir = tempDir(prefix);
    return { docker, workDir: this.workDir };
  }

  /** stop stops the engine (its containers go with it) and removes the workDir; nothing when skipped. */
  async stop(): Promise<void> {
    if (this.skip) return;
    await this.engine.stop();
    if (this.workDir) fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** dockerTestEngine starts the private engine of one test file (what names it in the skip warning); await it at the file's top. */
export async function dockerTestEngine(what: string): Promise<DockerTestEngine> {
  const started = await startDockerd();
  if ('skip' in started) console.warn(`${what} tests skipped: ${started.skip}`);
  return new DockerTestEngine(started);
}
