/**
 * The shim: a constant `sh -c` script that every process task starts through. It joins the task's
 * cgroups or sets the rlimit, starts the command in the background, writes its pid, forwards TERM and
 * INT to it, waits and writes its wait status. Plan values reach it only as positional arguments, so
 * nothing from a plan is ever interpreted by a shell.
 */

/**
 * SHIM_SCRIPT is the constant `sh -c` script every process task starts through. Arguments:
 * `$1` task folder, `$2` rlimit for virtual memory in KiB ('' for none), `$3` number N of cgroup.procs
 * files to join, then N paths, then the command's argv (already resolved to an executable path).
 */
export const SHIM_SCRIPT = [
  'dir=$1; vmem=$2; n=$3; shift 3',
  'while [ "$n" -gt 0 ]; do',
  '  echo $$ > "$1" || echo "factory-shim: cannot join cgroup $1" >&2',
  '  n=$((n - 1)); shift',
  'done',
  'if [ -n "$vmem" ]; then ulimit -v "$vmem" || echo "factory-shim: cannot set ulimit -v $vmem" >&2; fi',
  'trapped=',
  'child=',
  'trap \'trapped=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null\' TERM',
  'trap \'trapped=1; [ -n "$child" ] && kill -INT "$child" 2>/dev/null\' INT',
  '"$@" &',
  'child=$!',
  'echo "$child" > "$dir/pid.tmp" && mv -f "$dir/pid.tmp" "$dir/pid"',
  'while :; do',
  '  wait "$child"; status=$?',
  '  if [ "$status" -gt 128 ] && [ -n "$trapped" ]; then trapped=; continue; fi',
  '  break',
  'done',
  'echo "$status" > "$dir/exit.tmp" && mv -f "$dir/exit.tmp" "$dir/exit"',
  'exit "$status"',
].join('\n');

/** shimArgs is the argv of `/bin/sh` that runs SHIM_SCRIPT for the task in dir (vmemKb '' for no rlimit). */
export function shimArgs(dir: string, vmemKb: string, procs: string[], argv: string[]): string[] {
  return ['-c', SHIM_SCRIPT, 'factory-shim', dir, vmemKb, String(procs.length), ...procs, ...argv];
}
