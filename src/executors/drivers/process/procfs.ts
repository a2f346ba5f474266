/**
 * What the process driver reads of /proc: a process's state, parent, process group and start time.
 * The start time (field 22 of /proc/<pid>/stat) tells a task's process from a later one that reused
 * its pid.
 */
import fs from 'node:fs';

/** ProcStat is the part of /proc/<pid>/stat the driver uses. */
export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  start: string;
}

/** procStat reads /proc/<pid>/stat: state, ppid, process group and start time (field 22). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).trim().split(/\s+/);
  // f[0] is field 3 (state), so field N is f[N - 3].
  return { state: f[0] ?? '?', ppid: Number(f[1]), pgrp: Number(f[2]), start: f[19] ?? '' };
}

/** isAlive is true when pid exists, is not a zombie, and (if given) started at `start`. */
export function isAlive(pid: number | undefined, start?: string): boolean {
  if (!pid || pid <= 0) return false;
  const st = procStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return start === undefined || st.start === start;
}

/** groupMembers lists the live processes of process group pgid. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(e));
  }
  return out;
}
