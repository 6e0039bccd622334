import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Keeps the `keep` most recent run folders of `logDir` (`<logDir>/<run>/`, one per `npm start` or
 * benchmark run) and removes the older ones, newest judged by modification time. Files directly
 * in `logDir` are left alone; a missing `logDir` is fine; `keep` 0 keeps everything. Returns the
 * folders removed, oldest first.
 */
export async function pruneRunLogs(logDir: string, keep: number): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be an integer >= 0, got ${keep}`);
  if (keep === 0) return [];
  let entries;
  try {
    entries = await readdir(logDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const runs = await Promise.all(
    entries
      .filter((e) => e.isDirectory())
      .map(async (e) => ({
        path: join(logDir, e.name),
        mtimeMs: (await stat(join(logDir, e.name))).mtimeMs,
      })),
  );
  // Newest first; names break ties (run ids are timestamps, so they sort in time order too).
  runs.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.path < b.path ? 1 : -1));
  const old = runs.slice(keep).reverse();
  for (const run of old) await rm(run.path, { recursive: true, force: true });
  return old.map((r) => r.path);
}
