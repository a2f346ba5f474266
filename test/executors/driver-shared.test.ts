import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { DockerDriver } from '../../src/executors/drivers/docker.js';
import { ProcessDriver } from '../../src/executors/drivers/process/index.js';
import { signalName, signalOfExitStatus } from '../../src/executors/drivers/shared/signals.js';
import type { TaskRunSpec } from '../../src/protocol/messages.js';

describe('driver signals', () => {
  it('names a signal from an exit status above 128 and leaves plain exit codes alone', () => {
    expect(signalOfExitStatus(137)).toBe('SIGKILL');
    expect(signalOfExitStatus(143)).toBe('SIGTERM');
    expect(signalOfExitStatus(128)).toBeUndefined();
    expect(signalOfExitStatus(3)).toBeUndefined();
    expect(signalOfExitStatus(0)).toBeUndefined();
    expect(signalOfExitStatus(193)).toBeUndefined();
    expect(signalName(200)).toBe('SIG200');
  });
});

describe('run spec checks', () => {
  // nothing reaches the host: both drivers refuse before touching a folder or the engine
  const ctx = { workDir: '/nonexistent/factory-spec-checks', limits: 'none' as const, log: () => undefined };
  const processDriver = new ProcessDriver(ctx);
  const dockerDriver = new DockerDriver(ctx, {} as Docker);
  const spec = (over: Record<string, unknown>) =>
    ({ task: 'p/g/0', driver: 'process', command: ['true'], specHash: 'h', labels: { plan: 'p', group: 'g', project: 'x' }, stopGraceMs: 0, ...over }) as unknown as TaskRunSpec;

  it('refuses a missing spec and an unsafe task id the same way in both drivers', async () => {
    for (const d of [processDriver, dockerDriver]) {
      await expect(d.run(undefined as unknown as TaskRunSpec)).rejects.toMatchObject({ code: 'E_BAD_REQUEST', message: 'run: missing spec' });
      await expect(d.run(spec({ task: '../etc', image: 'alpine' }))).rejects.toMatchObject({ code: 'E_TASK_ID' });
      await expect(d.run(spec({ specHash: undefined, image: 'alpine' }))).rejects.toMatchObject({ code: 'E_BAD_REQUEST', message: 'run p/g/0: missing specHash' });
    }
  });

  it('applies each driver its own checks, first failure first', async () => {
    await expect(processDriver.run(spec({ command: [] }))).rejects.toThrow('run p/g/0: command must be a non-empty array of strings');
    await expect(processDriver.run(spec({ command: [], specHash: undefined }))).rejects.toThrow('command must be a non-empty array');
    await expect(processDriver.run(spec({ env: 'A=1' }))).rejects.toThrow('run p/g/0: env must be an object');
    await expect(processDriver.run(spec({ command: ['a\0b'] }))).rejects.toThrow('run p/g/0: command contains a NUL byte');
    await expect(dockerDriver.run(spec({ driver: 'docker' }))).rejects.toThrow('run p/g/0: a container needs an image');
    await expect(dockerDriver.run(spec({ driver: 'docker', image: 'alpine', command: ['a\0b'] }))).rejects.toThrow('run p/g/0: command must be an array of strings');
  });
});
