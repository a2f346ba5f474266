/**
 * How the libvirt driver runs the host tools the binding lacks (`virsh` for networks and reboot,
 * `qemu-img` for disks and images): execFile with an argv, never a shell, and a timeout.
 */
import { execFile } from 'node:child_process';
import { FactoryError } from '../../../errors.js';

/** RunTool runs a host tool with an argv; it rejects with a FactoryError quoting stderr. */
export type RunTool = (cmd: string, args: string[], timeoutMs?: number) => Promise<string>;

/** runHostTool is the default RunTool: execFile with a timeout. */
export const runHostTool: RunTool = (cmd, args, timeoutMs = 60_000) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const why = e.code === 'ENOENT' ? `${cmd} is not installed` : e.killed ? `timed out after ${timeoutMs}ms` : (stderr || e.message).trim().split('\n').slice(-3).join('; ');
        reject(new FactoryError(`${cmd} ${args.filter((a) => !a.startsWith('qemu:')).slice(0, 3).join(' ')}: ${why}`, { code: 'E_HOST_TOOL', cause: err }));
        return;
      }
      resolve(stdout);
    });
  });
