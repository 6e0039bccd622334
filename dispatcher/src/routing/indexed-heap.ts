/**
 * A binary min-heap of items with a numeric key (ties broken by a string, for determinism) that can
 * also remove or re-key any item in O(log n), because it tracks each item's position.
 * `ascending(limit)` walks the smallest `limit` items in order without disturbing the heap.
 */
export class IndexedHeap<T> {
  private readonly heap: { item: T; key: number; tie: string }[] = [];
  private readonly pos = new Map<T, number>();

  /** Number of items. */
  get size(): number {
    return this.heap.length;
  }

  has(item: T): boolean {
    return this.pos.has(item);
  }

  /** Inserts `item`, or re-keys it when present. */
  set(item: T, key: number, tie: string): void {
    const i = this.pos.get(item);
    if (i !== undefined) {
      const entry = this.heap[i]!;
      entry.key = key;
      entry.tie = tie;
      this.down(this.up(i));
      return;
    }
    this.heap.push({ item, key, tie });
    this.pos.set(item, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }

  /** Removes `item`; returns whether it was present. */
  delete(item: T): boolean {
    const i = this.pos.get(item);
    if (i === undefined) return false;
    this.pos.delete(item);
    const last = this.heap.pop()!;
    if (i < this.heap.length) {
      this.heap[i] = last;
      this.pos.set(last.item, i);
      this.down(this.up(i));
    }
    return true;
  }

  /** The item with the smallest key. */
  peek(): T | undefined {
    return this.heap[0]?.item;
  }

  /** Up to `limit` items, smallest key first, in O(limit²) (callers keep `limit` small). */
  *ascending(limit = Infinity): Generator<T> {
    if (this.heap.length === 0) return;
    // A frontier of heap positions, itself kept as a small heap of candidates.
    const frontier: number[] = [0];
    let yielded = 0;
    while (frontier.length > 0 && yielded < limit) {
      let best = 0;
      for (let k = 1; k < frontier.length; k++) if (this.less(frontier[k]!, frontier[best]!)) best = k;
      const i = frontier[best]!;
      frontier[best] = frontier[frontier.length - 1]!;
      frontier.pop();
      yield this.heap[i]!.item;
      yielded++;
      if (2 * i + 1 < this.heap.length) frontier.push(2 * i + 1);
      if (2 * i + 2 < this.heap.length) frontier.push(2 * i + 2);
    }
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.key < y.key || (x.key === y.key && x.tie < y.tie);
  }

  private swap(a: number, b: number): void {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    this.heap[a] = y;
    this.heap[b] = x;
    this.pos.set(y.item, a);
    this.pos.set(x.item, b);
  }

  private up(i: number): number {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
    return i;
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
