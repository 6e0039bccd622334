import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Noticing a model that changed in the repository behind the worker's back (files copied in, the
 * uploader's own API), so a worker that holds the label reloads it before serving the old one.
 *
 *   load ─> remember(label, stamp taken before the load)
 *   task on a loaded label ─ checked < intervalMs ago? ── yes ─> serve
 *                             │ no
 *                             └─ stamp now == remembered? ── yes ─> serve
 *                                                         └─ no ─> stale: reload, then serve
 */

/**
 * A cheap fingerprint of a label's files in the repository (`<repository>/<label>/`, every version,
 * config and tokenizer): each file's relative path, size, mtime and ctime, hashed. Metadata only,
 * never contents: a readdir and a stat per file. ctime is in it because a copy that keeps the
 * mtime (`cp -p`, `rsync -t`) still sets it. Resolves undefined when the label's folder is missing.
 */
export async function modelStamp(repository: string, label: string): Promise<string | undefined> {
  const dir = path.join(repository, label);
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const lines: string[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const s = await stat(file).catch(() => undefined);
    // A file removed between readdir and stat is a change in progress: the next check sees the result.
    if (s) lines.push(`${path.relative(dir, file)}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}`);
  }
  lines.sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** Options of `StaleModelCheck`. */
export interface StaleModelCheckOptions {
  /** The label's current stamp (undefined: unknown, never stale). Default: none (never stale). */
  stampOf: (label: string) => Promise<string | undefined>;
  /**
   * Re-stamp a loaded label at most this often, ms (WORKER_MODEL_RECHECK_MS); 0 = on every task.
   * Default 1000.
   */
  intervalMs?: number;
  /** Clock, ms. Default `performance.now`. */
  now?: () => number;
}

/** Defaults of `StaleModelCheckOptions`. */
export const STALE_MODEL_CHECK_DEFAULTS = Object.freeze({ intervalMs: 1000 });

/**
 * What each loaded label's files were when it was loaded, and whether they changed since; checked
 * at most every `intervalMs` per label, so a hot label costs one stat pass a second, not one a task.
 */
export class StaleModelCheck {
  readonly intervalMs: number;
  private readonly stampOf: (label: string) => Promise<string | undefined>;
  private readonly now: () => number;
  private readonly seen = new Map<string, { stamp: string | undefined; checkedAt: number }>();

  constructor(options: StaleModelCheckOptions) {
    const interval = options.intervalMs ?? STALE_MODEL_CHECK_DEFAULTS.intervalMs;
    if (!Number.isFinite(interval) || interval < 0)
      throw new TypeError(`StaleModelCheck: intervalMs must be >= 0, got ${interval}`);
    this.intervalMs = interval;
    this.stampOf = options.stampOf;
    this.now = options.now ?? (() => performance.now());
  }

  /** The label's stamp now (take it before a load, then `remember` it once the load succeeded). */
  stamp(label: string): Promise<string | undefined> {
    return this.stampOf(label);
  }

  /** Records what was loaded for `label`. */
  remember(label: string, stamp: string | undefined): void {
    this.seen.set(label, { stamp, checkedAt: this.now() });
  }

  /** Forgets `label` (evicted). */
  forget(label: string): void {
    this.seen.delete(label);
  }

  /**
   * Resolves with the new stamp when the label's files changed since `remember` (the model is
   * stale), else undefined. Not due yet, no remembered stamp, or a folder that vanished: undefined
   * (the model server keeps what it holds). Rejects when the files cannot be read.
   */
  async changed(label: string): Promise<string | undefined> {
    const seen = this.seen.get(label);
    const now = this.now();
    if (!seen || now - seen.checkedAt < this.intervalMs) return undefined;
    seen.checkedAt = now;
    const stamp = await this.stampOf(label);
    if (stamp === undefined || seen.stamp === undefined) {
      if (seen.stamp === undefined) seen.stamp = stamp;
      return undefined;
    }
    return stamp === seen.stamp ? undefined : stamp;
  }
}
