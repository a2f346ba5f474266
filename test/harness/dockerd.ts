/**
 * A private Docker engine for tests: `dockerd --iptables=false --bridge=none` with its own data root,
 * exec root, pid file and unix socket under a temp folder, stopped by pid afterwards. Also builds the
 * test image `factory-test/busybox:1` by importing a rootfs made of the static busybox binary (no
 * registry is reachable here).
 *
 * When dockerd or a static busybox is missing, startDockerd() returns a skip reason on a dev machine
 * and throws when CI is set: in CI a test that needs the daemon fails, it never silently skips.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { connectDocker, pingDocker } from '../../src/executors/drivers/docker-engine.js';

/** TEST_IMAGE is the image every docker test runs. */
export const TEST_IMAGE = 'factory-test/busybox:1';

/** BUSYBOX_APPLETS are linked into the test image's /bin. */
export const BUSYBOX_APPLETS = ['sh', 'sleep', 'echo', 'cat', 'nc', 'wget', 'httpd', 'ls', 'env', 'true', 'false', 'ps', 'kill', 'head', 'yes', 'dd', 'seq', 'rm', 'touch', 'test', 'mkdir'];

/** Dockerd is a running private engine. */
export interface Dockerd {
  /** dir holds the data root, exec root, pid file, socket and log. */
  dir: string;
  socket: string;
  /** host is `unix://<socket>`, for FACTORY_DOCKER_HOST / DOCKER_HOST. */
  host: string;
  pid: number;
  docker: Docker;
  /** stop removes every container, stops dockerd by pid and deletes dir. */
  stop(): Promise<void>;
}

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(d || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** staticBusybox finds a statically linked busybox (package busybox-static), or undefined. */
export function staticBusybox(): string | undefined {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    try {
      const out = execFileSync('file', ['-L', p], { encoding: 'utf8' });
      if (/statically linked|static-pie/.test(out)) return p;
    } catch {
      // no `file`: trust the ELF header not to name an interpreter
      try {
        const head = fs.readFileSync(p).subarray(0, 4096).toString('latin1');
        if (!head.includes('ld-linux')) return p;
      } catch {
        /* missing */
      }
    }
  }
  return undefined;
}

/** dockerdUnavailable says why this machine cannot run the docker tests, or undefined when it can. */
export function dockerdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'docker tests need root (dockerd)';
  if (!which('dockerd')) return 'dockerd not installed (apt-get install -y docker.io)';
  if (!staticBusybox()) return 'no static busybox for the test image (apt-get install -y busybox-static)';
  return undefined;
}

/**
 * startDockerd starts a private engine and waits until it answers. Returns `{skip}` with a reason
 * when the machine cannot (and CI is not set); throws when CI is set or the daemon fails to start.
 */
export async function startDockerd(opts: { readyTimeoutMs?: number } = {}): Promise<Dockerd | { skip: string }> {
  const missing = dockerdUnavailable();
  if (missing) {
    if (process.env.CI) throw new Error(`docker tests cannot run in CI: ${missing}`);
    return { skip: missing };
  }
  // Short path: unix socket paths (ours and containerd's under the exec root) are limited to 108 bytes.
  const dir = fs.mkdtempSync(path.join('/tmp', 'fdk-'));
  const socket = path.join(dir, 'd.sock');
  const logFile = path.join(dir, 'dockerd.log');
  const log = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    which('dockerd')!,
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'x'),
      '--pidfile', path.join(dir, 'dockerd.pid'),
      '--host', `unix://${socket}`,
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => (dead = true));
  const stopDaemon = async () => {
    if (!dead && child.pid) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const t = setTimeout(() => {
        if (!dead && child.pid) process.kill(child.pid, 'SIGKILL');
      }, 15_000);
      await exited;
      clearTimeout(t);
    }
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  const endpoint = { socketPath: socket };
  while (!(await pingDocker(endpoint, 500))) {
    if (dead || Date.now() > deadline) {
      await stopDaemon();
      const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n') : '';
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`dockerd did not start${dead ? ' (it exited)' : ' within the timeout'}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const docker = await connectDocker(endpoint);
  return {
    dir,
    socket,
    host: `unix://${socket}`,
    pid: child.pid!,
    docker,
    stop: async () => {
      try {
        const all = await docker.listContainers({ all: true });
        await Promise.all(all.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      } catch {
        /* daemon already gone */
      }
      await stopDaemon();
      // overlay mounts under the data root are gone once dockerd stopped; unmount leftovers defensively
      try {
        const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
        for (const m of mounts.sort().reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        /* nothing mounted */
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** buildTestImage imports a busybox rootfs as `tag` (default TEST_IMAGE) into the engine and returns its id. */
export async function buildTestImage(docker: Docker, tag: string = TEST_IMAGE, extraFile?: { path: string; content: string }): Promise<string> {
  const busybox = staticBusybox();
  if (!busybox) throw new Error('no static busybox (apt-get install -y busybox-static)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fdk-rootfs-'));
  try {
    for (const d of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev', 'www']) fs.mkdirSync(path.join(root, d));
    fs.copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    for (const a of BUSYBOX_APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'www', 'healthz'), 'ok\n');
    if (extraFile) fs.writeFileSync(path.join(root, extraFile.path.replace(/^\//, '')), extraFile.content);
    const tar = path.join(root, '..', `${path.basename(root)}.tar`);
    execFileSync('tar', ['-C', root, '-cf', tar, '.']);
    try {
      const [repo, version] = tag.split(':');
      const out = await docker.importImage(tar, { repo, tag: version ?? 'latest' });
      await new Promise<void>((resolve, reject) => {
        out.on('data', () => undefined);
        out.on('end', resolve);
        out.on('error', reject);
      });
    } finally {
      fs.rmSync(tar, { force: true });
    }
    return (await docker.getImage(tag).inspect()).Id;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
