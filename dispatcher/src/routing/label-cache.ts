/** What {@link LabelCache.use} did. */
export interface LabelUse {
  /** True when the label was not loaded and had to be loaded (a label miss). */
  miss: boolean;
  /** Labels unloaded to make room, in order: the dispatcher's choice first, then the safety net. */
  evicted: string[];
}

/** Options of {@link LabelCache}. */
export interface LabelCacheOptions {
  /** Memory budget, bytes. Default: none (the label count alone limits the cache). */
  memoryBudgetBytes?: number;
  /** Footprint of a label, bytes (with `memoryBudgetBytes`). Default 0 for every label. */
  footprintBytes?: (label: string) => number;
}

/**
 * A worker's loaded labels as the protocol defines them (contracts, behaviour 3): most recently used
 * first, at most `capacity`, and, with a memory budget, at most that many bytes of footprints.
 * Pure bookkeeping, no timing: fake workers in tests and the simulator use it to play the worker's
 * side exactly as the real worker does.
 */
export class LabelCache {
  private list: string[];
  private readonly budget: number;
  private readonly footprint: (label: string) => number;

  constructor(
    /** How many labels fit at once (at least 1). */
    readonly capacity: number,
    loaded: readonly string[] = [],
    options: LabelCacheOptions = {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be an integer >= 1');
    this.budget = options.memoryBudgetBytes ?? Infinity;
    this.footprint = options.footprintBytes ?? (() => 0);
    this.list = [...new Set(loaded)].slice(0, capacity);
  }

  /** Loaded labels, most recently used first (a copy). */
  get labels(): string[] {
    return [...this.list];
  }

  /** Sum of the loaded labels' footprints, bytes. */
  get usedBytes(): number {
    let sum = 0;
    for (const l of this.list) sum += this.footprint(l);
    return sum;
  }

  has(label: string): boolean {
    return this.list.includes(label);
  }

  /**
   * Runs a task on `label`: unloads `evictLabel` first when set and loaded, loads `label` when
   * missing (evicting its own least recently used labels while it is still full, by count or by
   * memory), and marks it most recent.
   */
  use(label: string, evictLabel?: string): LabelUse {
    const evicted: string[] = [];
    if (evictLabel && evictLabel !== label && this.evict(evictLabel)) evicted.push(evictLabel);
    const miss = !this.list.includes(label);
    if (miss) {
      const need = this.footprint(label);
      let used = this.usedBytes;
      while (this.list.length > 0 && (this.list.length >= this.capacity || used + need > this.budget)) {
        const victim = this.list.pop()!;
        used -= this.footprint(victim);
        evicted.push(victim);
      }
    } else {
      this.list.splice(this.list.indexOf(label), 1);
    }
    this.list.unshift(label);
    return { miss, evicted };
  }

  /** Unloads `label`; returns whether it was loaded. */
  evict(label: string): boolean {
    const i = this.list.indexOf(label);
    if (i < 0) return false;
    this.list.splice(i, 1);
    return true;
  }
}
