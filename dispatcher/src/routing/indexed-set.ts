/**
 * A set with O(1) add, delete, has and uniform random pick: items live in an array, and a map keeps
 * each item's index so a delete swaps the last item into the hole. Iteration order is not insertion
 * order (deletes reorder), which is fine for the routing indices that use it.
 */
export class IndexedSet<T> {
  private readonly items: T[] = [];
  private readonly index = new Map<T, number>();

  /** Number of items. */
  get size(): number {
    return this.items.length;
  }

  has(item: T): boolean {
    return this.index.has(item);
  }

  /** Adds `item`; a no-op when present. */
  add(item: T): void {
    if (this.index.has(item)) return;
    this.index.set(item, this.items.length);
    this.items.push(item);
  }

  /** Removes `item`; returns whether it was present. */
  delete(item: T): boolean {
    const i = this.index.get(item);
    if (i === undefined) return false;
    const last = this.items.pop() as T;
    this.index.delete(item);
    if (i < this.items.length) {
      this.items[i] = last;
      this.index.set(last, i);
    }
    return true;
  }

  /**
   * Items starting at a random position and wrapping around, at most `limit` of them: a uniform
   * random pick that can skip ineligible items without scanning the whole set.
   */
  *fromRandom(random: () => number, limit = Infinity): Generator<T> {
    const n = this.items.length;
    if (n === 0) return;
    const start = Math.min(n - 1, Math.floor(random() * n));
    const count = Math.min(n, limit);
    for (let k = 0; k < count; k++) yield this.items[(start + k) % n] as T;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items[Symbol.iterator]();
  }
}
