/**
 * The launcher: the one shell script the SSH transport runs on an agent, and the exit codes and
 * stderr lines by which it tells the control side what happened. Pure text, no connection.
 */
import { remoteExecutorPath } from './bundle.js';

/** EXIT_EXECUTOR_MISSING is the launcher's exit code when the executor file is not on the agent. */
export const EXIT_EXECUTOR_MISSING = 97;
/** EXIT_DOCKER_DRIVER_MISSING is the launcher's exit code when only the docker driver's file is missing on a docker host. */
export const EXIT_DOCKER_DRIVER_MISSING = 96;
/** DOCKER_DRIVER_MISSING is what the launcher says on stderr when the docker driver's file should be uploaded too. */
export const DOCKER_DRIVER_MISSING = 'docker-driver-missing';
/** EXIT_NODE_MISSING is the launcher's exit code when the Node binary cannot be found. */
export const EXIT_NODE_MISSING = 127;
/** LAUNCH_MARKER is what the launcher writes on stderr just before it execs the executor. */
export const LAUNCH_MARKER = 'factory-launch: ok';
/** LAUNCH_LINE matches the marker line with the executor's pid on the agent. */
export const LAUNCH_LINE = /factory-launch: ok pid (\d+)\n/;

/** shellQuote quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** LauncherOptions say what the launcher checks besides Node and the executor, and how missing files travel. */
export interface LauncherOptions {
  /** docker is the docker driver's file; it is wanted only on hosts that look like they run docker. */
  docker?: { name: string; size: number };
  /**
   * executorSize turns on the inline upload: a missing file is asked for on stderr
   * (`factory-launch: send <what>`) and read from the channel's stdin with `head -c`, so a cold
   * agent costs one exec, not exec + SFTP + exec. Without it (or without `head` on the agent) the
   * launcher exits EXIT_EXECUTOR_MISSING / EXIT_DOCKER_DRIVER_MISSING and the files go by SFTP.
   */
  executorSize?: number;
  /**
   * verifySize makes the launcher check a cached executor before running it: its size, and its
   * SHA-256 (the first 16 hex digits, which name the file) where `sha256sum` exists. A file that
   * does not match (a truncated upload, a full disk) is removed and sent again, instead of leaving
   * the agent lost on every run with Node's loader error.
   */
  verifySize?: number;
}

/** UPLOAD_FAILED_PREFIX starts the launcher's stderr line when an inline upload failed: `prefix<what>|<reason>|<KiB free>`. */
export const UPLOAD_FAILED_PREFIX = 'factory-launch: upload failed|';
/** EXIT_UPLOAD_FAILED is the launcher's exit code when an inline upload failed. */
export const EXIT_UPLOAD_FAILED = 98;
/** SEND_PREFIX starts the launcher's stderr line asking for a file on stdin: `prefix<executor|docker>`. */
export const SEND_PREFIX = 'factory-launch: send ';

/**
 * launcherCommand is the one shell script run on the agent: find Node, find the executor (and, on a
 * docker host, the docker driver's file), receive what is missing, say so on stderr and exec the
 * executor. Only the node path comes from the inventory, and it is quoted; sizes are integers and
 * file names are hex.
 */
export function launcherCommand(hash: string, nodePath = 'node', opts: LauncherOptions = {}): string {
  const file = remoteExecutorPath(hash);
  const docker = opts.docker;
  const lines = [`N=${shellQuote(nodePath)}`, `F="$HOME/${file}"`];
  if (docker) lines.push(`D="$HOME/.factory/${docker.name}"`);
  lines.push(`command -v "$N" >/dev/null 2>&1 || { echo "factory-launch: node not found: $N" >&2; exit ${EXIT_NODE_MISSING}; }`);
  if (opts.verifySize !== undefined) {
    lines.push(
      `ok() { [ -f "$F" ] && [ "$(wc -c <"$F" 2>/dev/null)" -eq ${Math.floor(opts.verifySize)} ] || return 1; command -v sha256sum >/dev/null 2>&1 || return 0; [ "$(sha256sum "$F" | cut -c1-16)" = "${hash}" ]; }`,
      'W=""',
      '[ ! -f "$F" ] || ok || { echo "factory-launch: cached executor $F is damaged (size or hash): replacing it" >&2; rm -f "$F"; }',
      '[ -f "$F" ] || W="executor"',
    );
  } else {
    lines.push('W=""', '[ -f "$F" ] || W="executor"');
  }
  if (docker) lines.push('[ -f "$D" ] || { [ ! -S /var/run/docker.sock ] && [ -z "$FACTORY_DOCKER_HOST$DOCKER_HOST" ]; } || W="$W docker"');
  const fallback = [
    `X=""; case "$W" in *docker*) X=" (${DOCKER_DRIVER_MISSING})";; esac`,
    `[ -f "$F" ] || { echo "factory-launch: executor missing: $F$X" >&2; exit ${EXIT_EXECUTOR_MISSING}; }`,
    `echo "factory-launch: $D missing$X" >&2; exit ${EXIT_DOCKER_DRIVER_MISSING}`,
  ];
  if (opts.executorSize !== undefined) {
    const size = (n: number) => String(Math.floor(n));
    lines.push(
      'if [ -n "$W" ]; then',
      '  if command -v head >/dev/null 2>&1 && mkdir -p -m 700 "$HOME/.factory" 2>/dev/null; then',
      `    recv() { T="$1.tmp-$$"; echo "${SEND_PREFIX}$3" >&2; E=$(head -c "$2" 2>&1 >"$T") && [ "$(wc -c <"$T")" -eq "$2" ] && mv -f "$T" "$1" && return 0; rm -f "$T"; A=$(df -Pk "$HOME/.factory" 2>/dev/null | tail -1 | awk '{print $4}'); E=$(echo "$E" | head -n 1); echo "${UPLOAD_FAILED_PREFIX}$3|\${E:-short write}|$A" >&2; exit ${EXIT_UPLOAD_FAILED}; }`,
      ...(docker ? [`    case "$W" in *docker*) recv "$D" ${size(docker.size)} docker;; esac`] : []),
      `    case "$W" in executor*) recv "$F" ${size(opts.executorSize)} executor;; esac`,
      '  else',
      ...fallback.map((l) => `    ${l}`),
      '  fi',
      'fi',
    );
  } else {
    lines.push('if [ -n "$W" ]; then', ...fallback.map((l) => `  ${l}`), 'fi');
  }
  // exec keeps the shell's pid: the executor's, for the kill of one that never answers
  lines.push(`cd "$HOME" && echo "${LAUNCH_MARKER} pid $$" >&2 && exec "$N" "$F"`);
  return lines.join('\n');
}
