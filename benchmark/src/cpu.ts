import { readFile } from 'node:fs/promises';

/**
 * CPU time (user + system) a process has used so far, ms, from /proc/<pid>/stat (Linux).
 * Fields 14 and 15 are utime and stime in clock ticks (100 per second on Linux).
 */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after the closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / 100;
}

/** Pids of the direct children of `pid` (Linux, /proc/<pid>/task/<pid>/children); [] when unknown. */
export async function childPids(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
