import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A label that is one plain folder name (no separators, not `.` or `..`). */
const SAFE_LABEL = /^(?!\.{1,2}$)[^/\\\0]{1,200}$/;

/** Most cached lookups kept; past that the cache starts over (bounds memory under junk labels). */
const MAX_CACHED = 10_000;

/**
 * Which labels the model repository has, read from the folder itself (`<repo>/<label>/config.pbtxt`,
 * the Triton layout) and cached for `ttlMs`, so the /run-task path rarely touches the disk.
 */
export class RepositoryLabels {
  private readonly lookups = new Map<string, { exists: boolean; at: number }>();
  private listing: { labels: string[]; at: number } | undefined;

  constructor(
    /** The repository folder. */
    readonly dir: string,
    /** How long an answer is reused (ms). */
    private readonly ttlMs: number,
  ) {}

  /** The cached answer for `label`, or undefined when it must be looked up. */
  cached(label: string, now = Date.now()): boolean | undefined {
    if (!SAFE_LABEL.test(label)) return false;
    const hit = this.lookups.get(label);
    return hit && now - hit.at < this.ttlMs ? hit.exists : undefined;
  }

  /** Whether the repository has `label`. */
  async has(label: string): Promise<boolean> {
    const known = this.cached(label);
    if (known !== undefined) return known;
    const exists = await access(join(this.dir, label, 'config.pbtxt')).then(
      () => true,
      () => false,
    );
    if (this.lookups.size >= MAX_CACHED) this.lookups.clear();
    this.lookups.set(label, { exists, at: Date.now() });
    return exists;
  }

  /** Every label in the repository, sorted ([] when the folder is missing). */
  async list(): Promise<string[]> {
    const now = Date.now();
    if (this.listing && now - this.listing.at < this.ttlMs) return this.listing.labels;
    let names: string[] = [];
    try {
      const entries = await readdir(this.dir, { withFileTypes: true });
      const dirs = entries.filter((e) => e.isDirectory() && SAFE_LABEL.test(e.name)).map((e) => e.name);
      const found = await Promise.all(
        dirs.map((name) => this.has(name).then((ok) => (ok ? name : undefined))),
      );
      names = found.filter((n): n is string => n !== undefined).sort();
    } catch {
      names = [];
    }
    this.listing = { labels: names, at: now };
    return names;
  }

  /** Forgets cached answers (after an upload). */
  invalidate(): void {
    this.lookups.clear();
    this.listing = undefined;
  }
}
