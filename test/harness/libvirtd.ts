/**
 * Test harness for the libvirt tests: makes sure a libvirtd (with virtlogd) answers at qemu:///system
 * — starting `virtlogd -d` and `libvirtd -d` when none runs — and builds the tiny test guest.
 *
 * Several test files (vitest workers) share one daemon: each acquire() registers a user file; the
 * release() that leaves no user stops the daemons this harness started, by their pid files, and only
 * those. On a dev machine without the packages the tests skip with the reason; when CI is set they fail.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** GUEST_DIR caches the test guest's kernel and initramfs, in a folder QEMU (user libvirt-qemu) can read. */
export const GUEST_DIR = process.env.FACTORY_TEST_GUEST_DIR ?? '/var/lib/factory-test/guest';

/** TEST_ROOT is a folder QEMU can reach for test work folders (a 0700 mktemp folder is refused). */
export const TEST_ROOT = '/var/lib/factory-test';

const HARNESS_DIR = '/run/factory-test/libvirtd';
const USERS_DIR = path.join(HARNESS_DIR, 'users');
const STARTED_FILE = path.join(HARNESS_DIR, 'started.json');
const LOCK_DIR = path.join(HARNESS_DIR, 'lock');
const URI = 'qemu:///system';
const here = path.dirname(fileURLToPath(import.meta.url));

/** LibvirtAvailability is the answer of acquire(): ready, or the reason the tests skip. */
export type LibvirtAvailability = { ok: true; release: () => Promise<void> } | { ok: false; reason: string };

function which(cmd: string): boolean {
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (fs.existsSync(path.join(d, cmd))) return true;
  }
  return false;
}

function answers(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('virsh', ['-c', URI, 'version'], { timeout: 10_000 }, (err) => resolve(!err));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(HARNESS_DIR, { recursive: true });
  const until = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      break;
    } catch {
      const holder = readPid(path.join(LOCK_DIR, 'pid'));
      if (holder !== undefined && !pidAlive(holder)) fs.rmSync(LOCK_DIR, { recursive: true, force: true });
      if (Date.now() > until) throw new Error('libvirtd harness: lock held too long');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

function liveUsers(): string[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(USERS_DIR);
  } catch {
    return [];
  }
  return names.filter((n) => {
    const pid = Number(n.split('-')[0]);
    if (pidAlive(pid)) return true;
    fs.rmSync(path.join(USERS_DIR, n), { force: true });
    return false;
  });
}

/** missingPackages names what is not installed for the libvirt tests (empty when everything is). */
export function missingPackages(): string[] {
  const need: [string, string][] = [
    ['libvirtd', 'libvirt-daemon-system'],
    ['virtlogd', 'libvirt-daemon-system'],
    ['virsh', 'libvirt-clients'],
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['qemu-img', 'qemu-utils'],
  ];
  const out = new Set<string>();
  for (const [cmd, pkg] of need) if (!which(cmd)) out.add(pkg);
  try {
    execFileSync(process.execPath, ['-e', "import('@unraid/libvirt').then(() => process.exit(0), () => process.exit(1))"], { stdio: 'ignore', cwd: path.resolve(here, '../..') });
  } catch {
    out.add('@unraid/libvirt (npm optional dependency)');
  }
  return [...out];
}

async function start(): Promise<number[]> {
  const started: number[] = [];
  const logdPid = readPid('/var/run/virtlogd.pid');
  if (!(logdPid && pidAlive(logdPid))) {
    execFileSync('virtlogd', ['-d'], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !readPid('/var/run/virtlogd.pid'); i++) await new Promise((r) => setTimeout(r, 100));
    const p = readPid('/var/run/virtlogd.pid');
    if (p) started.push(p);
  }
  const lvPid = readPid('/var/run/libvirtd.pid');
  if (!(lvPid && pidAlive(lvPid))) {
    execFileSync('libvirtd', ['-d'], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !readPid('/var/run/libvirtd.pid'); i++) await new Promise((r) => setTimeout(r, 100));
    const p = readPid('/var/run/libvirtd.pid');
    if (p) started.push(p);
  }
  // The first start probes QEMU (~8 s).
  const until = Date.now() + 60_000;
  while (!(await answers())) {
    if (Date.now() > until) throw new Error('libvirtd did not answer at qemu:///system within 60 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  return started;
}

/**
 * acquireLibvirtd makes libvirtd answer (starting it if needed) and registers this test file as a
 * user. Without the packages: a skip reason on a dev machine, an exception under CI.
 */
export async function acquireLibvirtd(): Promise<LibvirtAvailability> {
  const missing = missingPackages();
  if (missing.length || process.getuid?.() !== 0) {
    const reason = missing.length
      ? `libvirt tests need: ${missing.join(', ')} (apt-get install -y libvirt-daemon-system qemu-system-x86 qemu-utils; .ci/run installs them)`
      : 'libvirt tests start the system libvirtd (qemu:///system): run them as root';
    if (process.env.CI) throw new Error(`CI: ${reason}`);
    return { ok: false, reason };
  }
  const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  await withLock(async () => {
    fs.mkdirSync(USERS_DIR, { recursive: true });
    fs.writeFileSync(path.join(USERS_DIR, token), '');
    if (await answers()) return;
    const pids = await start();
    if (pids.length) {
      let prev: number[] = [];
      try {
        prev = JSON.parse(fs.readFileSync(STARTED_FILE, 'utf8')) as number[];
      } catch {
        /* none */
      }
      fs.writeFileSync(STARTED_FILE, JSON.stringify([...prev.filter(pidAlive), ...pids]));
    }
  });
  return {
    ok: true,
    release: () =>
      withLock(async () => {
        fs.rmSync(path.join(USERS_DIR, token), { force: true });
        if (liveUsers().length) return;
        let pids: number[] = [];
        try {
          pids = JSON.parse(fs.readFileSync(STARTED_FILE, 'utf8')) as number[];
        } catch {
          return; // we started nothing: leave the daemons alone
        }
        // libvirtd first, then virtlogd (reverse start order); only the pids we recorded.
        for (const pid of [...pids].reverse()) {
          if (!pidAlive(pid)) continue;
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            /* gone */
          }
          for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
        }
        fs.rmSync(STARTED_FILE, { force: true });
      }),
  };
}

/** TestGuest is the tiny guest: a Debian kernel and a busybox initramfs (see build-guest.sh). */
export interface TestGuest {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/** GUEST_VERSION is build-guest.sh's: a guest cached by an older script (no NIC, no factory.listen) is built again. */
export const GUEST_VERSION = '2';

/** ensureTestGuest builds the guest into GUEST_DIR once (apt-get download of the kernel; ~10 s). */
export function ensureTestGuest(): TestGuest {
  const kernel = path.join(GUEST_DIR, 'vmlinuz');
  const initrd = path.join(GUEST_DIR, 'initrd.img');
  let version = '';
  try {
    version = fs.readFileSync(path.join(GUEST_DIR, 'guest-version'), 'utf8').trim();
  } catch {
    /* built by an older script, or not at all */
  }
  if (!fs.existsSync(kernel) || !fs.existsSync(initrd) || version !== GUEST_VERSION) {
    execFileSync('bash', [path.join(here, 'build-guest.sh'), GUEST_DIR], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  }
  // quiet: an emulated serial console is slow; the guest's markers are printed either way
  return { kernel, initrd, cmdline: 'console=ttyS0 quiet panic=-1' };
}

/**
 * makeGuestImageSource writes a `factory vm push` source folder for the test guest: kernel, initrd,
 * cmdline and an empty 16 MiB disk.qcow2.
 */
export function makeGuestImageSource(dir: string, guest: TestGuest = ensureTestGuest()): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(guest.kernel, path.join(dir, 'kernel'));
  fs.copyFileSync(guest.initrd, path.join(dir, 'initrd'));
  fs.writeFileSync(path.join(dir, 'cmdline'), `${guest.cmdline}\n`);
  const disk = path.join(dir, 'disk.qcow2');
  if (!fs.existsSync(disk)) execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  return dir;
}

/** testWorkDir makes a work folder under TEST_ROOT (reachable by QEMU); the returned function removes it. */
export function testWorkDir(prefix: string): { dir: string; cleanup: () => void } {
  fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  const dir = fs.mkdtempSync(path.join(TEST_ROOT, prefix));
  fs.chmodSync(dir, 0o755);
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** consoleOf reads a VM's serial console log ('' when it has none yet). */
export function consoleOf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
