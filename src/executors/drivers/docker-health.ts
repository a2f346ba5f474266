/**
 * A plan's health check as a Docker HEALTHCHECK. The engine runs the check inside the container
 * (so 127.0.0.1 is the container's own loopback, also with `NetworkMode: none`) and keeps its status
 * in `State.Health`, which the docker driver reports as TaskStatus.health.
 *
 * Nothing from a plan is pasted into a shell string: the http and tcp probes are constant scripts
 * that get the URL or port as positional arguments.
 */
import type Docker from 'dockerode';
import type { TaskHealth, TaskHealthCheck } from '../../protocol/messages.js';

/** HTTP_PROBE_SCRIPT fetches `$1` with wget (busybox or GNU), else curl (timeout `$2` s); exit 0 on a 2xx/3xx answer. */
export const HTTP_PROBE_SCRIPT = [
  // no `-T`: busybox 1.35's static wget crashes with it; the engine's check timeout bounds the probe
  'if command -v wget >/dev/null 2>&1; then exec wget -q -O /dev/null "$1"; fi',
  'if command -v curl >/dev/null 2>&1; then exec curl -fsS -m "$2" -o /dev/null "$1"; fi',
  'echo "factory health: neither wget nor curl in the image" >&2; exit 1',
].join('\n');

/**
 * TCP_PROBE_SCRIPT connects to 127.0.0.1:`$1` (timeout `$2` s): `nc -z` (netcat-openbsd), busybox `nc … -e true`, or
 * bash's /dev/tcp, whichever the image has; exit 0 when the port accepts a connection.
 */
export const TCP_PROBE_SCRIPT = [
  'if command -v nc >/dev/null 2>&1; then',
  '  nc -z -w "$2" 127.0.0.1 "$1" 2>/dev/null && exit 0',
  // busybox: -e takes the rest of the line as the program, so it goes last
  '  nc -w "$2" 127.0.0.1 "$1" -e true </dev/null 2>/dev/null && exit 0',
  '  exit 1',
  'fi',
  'if command -v bash >/dev/null 2>&1; then exec bash -c \'exec 3<>"/dev/tcp/127.0.0.1/$1"\' factory-health "$1"; fi',
  'echo "factory health: neither nc nor bash in the image" >&2; exit 1',
].join('\n');

/** HEALTH_RETRIES is how many failed checks in a row make a container unhealthy. */
export const HEALTH_RETRIES = 3;

const MS = 1_000_000; // Docker durations are nanoseconds.

/** healthTimeoutMs is the per-check timeout: the interval, at most 5 s and at least 1 s. */
export function healthTimeoutMs(h: TaskHealthCheck): number {
  return Math.max(1000, Math.min(5000, h.intervalMs));
}

/** dockerHealthcheck maps a plan's health check to the engine's HealthConfig (CMD argv, never CMD-SHELL). */
export function dockerHealthcheck(h: TaskHealthCheck): Docker.HealthConfig {
  const timeoutMs = healthTimeoutMs(h);
  const seconds = String(Math.max(1, Math.floor(timeoutMs / 1000)));
  let test: string[];
  if (h.command && h.command.length > 0) {
    test = ['CMD', ...h.command];
  } else if (h.http !== undefined) {
    const url = `http://127.0.0.1:${h.port ?? 80}${h.http.startsWith('/') ? h.http : `/${h.http}`}`;
    test = ['CMD', '/bin/sh', '-c', HTTP_PROBE_SCRIPT, 'factory-health', url, seconds];
  } else if (h.tcp) {
    test = ['CMD', '/bin/sh', '-c', TCP_PROBE_SCRIPT, 'factory-health', String(h.port ?? 0), seconds];
  } else {
    return { Test: ['NONE'] };
  }
  return {
    Test: test,
    Interval: Math.max(1, h.intervalMs) * MS,
    Timeout: timeoutMs * MS,
    Retries: HEALTH_RETRIES,
    StartPeriod: 0,
  };
}

/** taskHealthOf maps the engine's `State.Health.Status` to TaskHealth (undefined without a check). */
export function taskHealthOf(status: string | undefined): TaskHealth | undefined {
  if (status === 'healthy' || status === 'unhealthy' || status === 'starting') return status;
  return undefined;
}
