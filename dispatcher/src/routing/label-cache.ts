/** What {@link LabelCache.use} did. */
export interface LabelUse {
  /** True when the label was not loaded and had to be loaded (a label miss). */
  miss: boolean;
  /** Labels unloaded to make room, in order: the dispatcher's choice first, then the safety net. */
  evicted: string[];
}

/**
 * A worker's loaded labels as the protocol defines them (contracts, behaviour 3): most recently used
 * first, at most `capacity`. Pure bookkeeping, no timing: fake workers in tests and the simulator
 * use it to play the worker's side exactly as the real worker does.
 */
export class LabelCache {
  private list: string[];

  constructor(
    /** How many labels fit at once (at least 1). */
    readonly capacity: number,
    loaded: readonly string[] = [],
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be an integer >= 1');
    this.list = [...new Set(loaded)].slice(0, capacity);
  }

  /** Loaded labels, most recently used first (a copy). */
  get labels(): string[] {
    return [...this.list];
  }

  has(label: string): boolean {
    return this.list.includes(label);
  }

  /**
   * Runs a task on `label`: unloads `evictLabel` first when set and loaded, loads `label` when
   * missing (evicting its own least recently used label if still full), and marks it most recent.
   */
  use(label: string, evictLabel?: string): LabelUse {
    const evicted: string[] = [];
    if (evictLabel && evictLabel !== label && this.evict(evictLabel)) evicted.push(evictLabel);
    const miss = !this.list.includes(label);
    if (miss) {
      while (this.list.length >= this.capacity) evicted.push(this.list.pop()!);
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
