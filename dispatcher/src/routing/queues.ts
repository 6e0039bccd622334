import type { TaskSpec } from './types.js';

/** Name of the common FIFO queue (label-blind policies queue every task there). */
export const COMMON_QUEUE = '*';

/** A waiting task. Nodes sit in two lists: their queue, and the global list of all waiting tasks. */
export interface QueuedTask {
  readonly task: TaskSpec;
  /** A label, or {@link COMMON_QUEUE}. */
  readonly queue: string;
  /** Position in the global order: smaller = served earlier. Retries pushed to the front get negatives. */
  readonly order: number;
  /** Router time when it was queued. */
  readonly enqueuedAt: number;
  /** Fair-queueing tag (smaller = served earlier between queues); defaults to `order`. */
  readonly tag: number;
}

interface Node extends QueuedTask {
  /** {@link tierOf}: the priority, or {@link FRONT_TIER} for a retry pushed to the front. */
  readonly tier: number;
  prev: Node | undefined;
  next: Node | undefined;
  prevAll: Node | undefined;
  nextAll: Node | undefined;
}

interface List {
  head: Node | undefined;
  tail: Node | undefined;
  size: number;
  /** The last node of each tier in this list (lists are sorted by tier, highest first). */
  tails: (Node | undefined)[];
}

/** Highest task priority. */
export const MAX_PRIORITY = 9;
/** Retries pushed to the front sit above every priority. */
const FRONT_TIER = MAX_PRIORITY + 1;

/** A task's tier: its priority clamped to 0..9 (not a number: 0). */
function tierOf(task: TaskSpec): number {
  const p = task.priority ?? 0;
  return Number.isFinite(p) ? Math.min(MAX_PRIORITY, Math.max(0, Math.floor(p))) : 0;
}

/** The last node of tier >= `tier`: a new node of `tier` goes right after it (O(tiers)). */
function anchorFor(tails: (Node | undefined)[], tier: number): Node | undefined {
  for (let t = tier; t <= FRONT_TIER; t++) if (tails[t]) return tails[t];
  return undefined;
}

/**
 * Per-label queues and a common queue, threaded through one global order of all waiting tasks:
 * higher priority first, then oldest first (retries pushed to the front before all). Push, look at
 * heads, and remove any task by id, all in O(1) (O(10) for the priority tiers); a per-label count
 * and sum of enqueue times cover tasks of that label in whichever queue.
 */
export class TaskQueues {
  private readonly nodes = new Map<string, Node>();
  private readonly lists = new Map<string, List>();
  private readonly perLabel = new Map<string, number>();
  /** Sum of `enqueuedAt` of the tasks waiting for each label (for {@link waitedMsForLabel}). */
  private readonly enqueuedSum = new Map<string, number>();
  private head: Node | undefined;
  /** The last node of each tier in the global order. */
  private readonly tails: (Node | undefined)[] = [];
  private backSeq = 0;
  private frontSeq = 0;

  /** Number of waiting tasks. */
  get size(): number {
    return this.nodes.size;
  }

  has(taskId: string): boolean {
    return this.nodes.has(taskId);
  }

  get(taskId: string): QueuedTask | undefined {
    return this.nodes.get(taskId);
  }

  /** Tasks waiting in `queue` (a label or {@link COMMON_QUEUE}). */
  sizeOf(queue: string): number {
    return this.lists.get(queue)?.size ?? 0;
  }

  /** Tasks waiting for `label`, whichever queue they are in. */
  countForLabel(label: string): number {
    return this.perLabel.get(label) ?? 0;
  }

  /**
   * Total time the tasks waiting for `label` have waited so far at `now`, ms (0 when none wait).
   * O(1): count x now - sum of their enqueue times.
   */
  waitedMsForLabel(label: string, now: number): number {
    const n = this.perLabel.get(label);
    return n === undefined ? 0 : Math.max(0, n * now - this.enqueuedSum.get(label)!);
  }

  /** The next task of `queue`. */
  headOf(queue: string): QueuedTask | undefined {
    return this.lists.get(queue)?.head;
  }

  /** The task that has waited longest (retries pushed to the front count as oldest). */
  oldest(): QueuedTask | undefined {
    return this.head;
  }

  /** Waiting tasks, oldest first, at most `limit`. Do not mutate while iterating. */
  *inOrder(limit = Infinity): Generator<QueuedTask> {
    let n = 0;
    for (let node = this.head; node && n < limit; node = node.nextAll, n++) yield node;
  }

  /** Sizes of the non-empty queues. */
  depths(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, list] of this.lists) out.set(key, list.size);
    return out;
  }

  /**
   * Adds `task` to the back (or the front) of `queue`, with a fair-queueing `tag` (default: its
   * order). Throws if the id is already waiting.
   */
  push(task: TaskSpec, queue: string, now: number, front = false, tag?: number): QueuedTask {
    if (this.nodes.has(task.id)) throw new Error(`task ${task.id} is already queued`);
    const order = front ? --this.frontSeq : ++this.backSeq;
    const tier = front ? FRONT_TIER : tierOf(task);
    const node: Node = {
      task,
      queue,
      order,
      tag: tag ?? order,
      tier,
      enqueuedAt: now,
      prev: undefined,
      next: undefined,
      prevAll: undefined,
      nextAll: undefined,
    };
    let list = this.lists.get(queue);
    if (!list) this.lists.set(queue, (list = { head: undefined, tail: undefined, size: 0, tails: [] }));
    // A front push goes before everything (newest retry first); others after the last of their tier or above.
    const anchor = front ? undefined : anchorFor(list.tails, tier);
    if (anchor) {
      node.prev = anchor;
      node.next = anchor.next;
      if (anchor.next) anchor.next.prev = node;
      else list.tail = node;
      anchor.next = node;
    } else {
      node.next = list.head;
      if (list.head) list.head.prev = node;
      else list.tail = node;
      list.head = node;
    }
    if (!front || !list.tails[tier]) list.tails[tier] = node;
    const anchorAll = front ? undefined : anchorFor(this.tails, tier);
    if (anchorAll) {
      node.prevAll = anchorAll;
      node.nextAll = anchorAll.nextAll;
      if (anchorAll.nextAll) anchorAll.nextAll.prevAll = node;
      anchorAll.nextAll = node;
    } else {
      node.nextAll = this.head;
      if (this.head) this.head.prevAll = node;
      this.head = node;
    }
    if (!front || !this.tails[tier]) this.tails[tier] = node;
    list.size++;
    this.nodes.set(task.id, node);
    this.perLabel.set(task.label, (this.perLabel.get(task.label) ?? 0) + 1);
    this.enqueuedSum.set(task.label, (this.enqueuedSum.get(task.label) ?? 0) + now);
    return node;
  }

  /** Removes a waiting task by id (served, timed out or cancelled). */
  remove(taskId: string): QueuedTask | undefined {
    const node = this.nodes.get(taskId);
    if (!node) return undefined;
    this.nodes.delete(taskId);
    const list = this.lists.get(node.queue)!;
    if (list.tails[node.tier] === node)
      list.tails[node.tier] = node.prev?.tier === node.tier ? node.prev : undefined;
    if (this.tails[node.tier] === node)
      this.tails[node.tier] = node.prevAll?.tier === node.tier ? node.prevAll : undefined;
    if (node.prev) node.prev.next = node.next;
    else list.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else list.tail = node.prev;
    if (--list.size === 0) this.lists.delete(node.queue);
    if (node.prevAll) node.prevAll.nextAll = node.nextAll;
    else this.head = node.nextAll;
    if (node.nextAll) node.nextAll.prevAll = node.prevAll;
    node.prev = node.next = node.prevAll = node.nextAll = undefined;
    const n = (this.perLabel.get(node.task.label) ?? 1) - 1;
    if (n > 0) {
      this.perLabel.set(node.task.label, n);
      this.enqueuedSum.set(node.task.label, this.enqueuedSum.get(node.task.label)! - node.enqueuedAt);
    } else {
      this.perLabel.delete(node.task.label);
      this.enqueuedSum.delete(node.task.label);
    }
    return node;
  }
}
