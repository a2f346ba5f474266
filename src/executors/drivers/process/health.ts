/**
 * A process task's health check. Docker runs a container's check itself; for a process, the driver
 * starts a prober beside the task: a constant `sh -c` loop in its own process group (outside the
 * task's cgroups and rlimit), which runs the check every interval while the task's command lives and
 * writes the outcome to `<task folder>/health` (temp file + mv). The executor keeps nothing in memory:
 * any session reads the file. Like Docker's: `starting` until the first check passes, `healthy` once
 * one passed, `unhealthy` after HEALTH_RETRIES failures in a row.
 *
 * The check: `command` is the argv run with the task's environment and working folder (exit 0 is
 * healthy, bounded by `timeout` when the host has it); `http` (a GET, 2xx/3xx is healthy) and `tcp`
 * (a connection accepted) on 127.0.0.1:port are made by a short Node program (PROBE_JS, run with the
 * executor's own Node). Plan values reach the loop only as positional arguments.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TaskHealth, TaskHealthCheck } from '../../../protocol/messages.js';
import { HEALTH_RETRIES, healthTimeoutMs } from '../docker-health.js';
import { isAlive, procStat } from './procfs.js';
import { readFileOr, type TaskMarker } from './task-files.js';

/** PROBE_JS checks http (`http <timeoutS> <port> <path>`) or tcp (`tcp <timeoutS> <port>`) on 127.0.0.1: exit 0 healthy. */
export const PROBE_JS = [
  "const [kind, to, port, p] = process.argv.slice(1); const ms = Math.max(1, Number(to)) * 1000;",
  'setTimeout(() => process.exit(1), ms).unref();',
  "if (kind === 'tcp') { const s = require('net').connect(Number(port), '127.0.0.1', () => process.exit(0)); s.on('error', () => process.exit(1)); }",
  "else { require('http').get({ host: '127.0.0.1', port: Number(port), path: p, timeout: ms }, (r) => process.exit(r.statusCode >= 200 && r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1)); }",
].join('\n');

/**
 * HEALTH_SCRIPT is the prober's loop. Arguments: `$1` task folder, `$2` the command's pid, `$3` interval
 * (seconds, may be fractional), `$4` per-check timeout (whole seconds), `$5` retries, `$6` kind
 * (command, http, tcp), `$7` node, `$8` PROBE_JS, then the check's argv (command) or port [path].
 */
export const HEALTH_SCRIPT = [
  'dir=$1; pid=$2; every=$3; to=$4; retries=$5; kind=$6; node=$7; probe=$8; shift 8',
  'st=starting; fails=0',
  'if command -v timeout >/dev/null 2>&1; then bounded=1; else bounded=; fi',
  'while kill -0 "$pid" 2>/dev/null; do',
  '  if [ "$kind" = command ]; then',
  '    if [ -n "$bounded" ]; then timeout "$to" "$@" >/dev/null 2>&1; else "$@" >/dev/null 2>&1; fi',
  '  else',
  '    "$node" -e "$probe" "$kind" "$to" "$@" >/dev/null 2>&1',
  '  fi',
  '  if [ $? -eq 0 ]; then st=healthy; fails=0; else fails=$((fails + 1)); if [ "$fails" -ge "$retries" ]; then st=unhealthy; fi; fi',
  '  kill -0 "$pid" 2>/dev/null || break',
  '  echo "$st $fails" > "$dir/health.tmp" && mv -f "$dir/health.tmp" "$dir/health"',
  '  sleep "$every"',
  'done',
].join('\n');

/** proberArgs is the argv of `/bin/sh` that runs HEALTH_SCRIPT for the task in dir, whose command has pid. */
export function proberArgs(dir: string, pid: number, h: TaskHealthCheck, node: string): string[] {
  const timeoutS = String(Math.max(1, Math.round(healthTimeoutMs(h) / 1000)));
  const head = ['-c', HEALTH_SCRIPT, 'factory-health', dir, String(pid), String(Math.max(0.1, h.intervalMs / 1000)), timeoutS, String(HEALTH_RETRIES)];
  if (h.command && h.command.length > 0) return [...head, 'command', node, PROBE_JS, ...h.command];
  if (h.http !== undefined) return [...head, 'http', node, PROBE_JS, String(h.port ?? 80), h.http.startsWith('/') ? h.http : `/${h.http}`];
  return [...head, 'tcp', node, PROBE_JS, String(h.port ?? 0)];
}

/** startProber starts the task's prober (when its spec has a health check) and records it in the marker. */
export function startProber(dir: string, m: TaskMarker, pid: number, cmd: { cwd: string; env: Record<string, string> }, log: (msg: string) => void, opts: { keepHealth?: boolean } = {}): void {
  const h = m.spec.health;
  if (!h || (!h.command?.length && h.http === undefined && !h.tcp)) return;
  if (!opts.keepHealth) fs.rmSync(path.join(dir, 'health'), { force: true });
  const child = spawn('/bin/sh', proberArgs(dir, pid, h, process.execPath), { cwd: cmd.cwd, env: cmd.env, detached: true, stdio: 'ignore' });
  child.on('error', (err) => log(`process driver: ${m.spec.task}: cannot start its health prober: ${err.message}`));
  child.unref();
  if (child.pid === undefined) return;
  m.proberPgid = child.pid;
  const st = procStat(child.pid);
  if (st) m.proberStart = st.start;
}

/** stopProber ends a task's prober (it ends by itself within an interval once the command is gone). */
export function stopProber(m: TaskMarker): void {
  if (m.proberPgid && isAlive(m.proberPgid, m.proberStart)) {
    try {
      process.kill(-m.proberPgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** readHealth is a task's health as its prober last wrote it: starting until its first check, and with the failures in a row. */
export function readHealth(dir: string): { health: TaskHealth; fails: number } {
  const [st, fails] = (readFileOr(path.join(dir, 'health')) ?? '').trim().split(' ');
  const health: TaskHealth = st === 'healthy' || st === 'unhealthy' ? st : 'starting';
  return { health, fails: Number(fails) || 0 };
}
