/**
 * Signals in exit statuses: a shell (the process driver's shim) and the container engine both report
 * a command killed by signal N as the exit status 128 + N, and both drivers report it by name.
 */
import os from 'node:os';

/** signalName is the name of signal number n (`SIGTERM`), or `SIG<n>` for a number the platform does not name. */
export function signalName(n: number): string {
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === n) return name;
  return `SIG${n}`;
}

/** signalOfExitStatus is the name of the signal an exit status 129–192 stands for, undefined for a plain exit code. */
export function signalOfExitStatus(status: number): string | undefined {
  return status > 128 && status < 128 + 65 ? signalName(status - 128) : undefined;
}
