import { IndexedHeap } from './indexed-heap.js';
import { IndexedSet } from './indexed-set.js';
import {
  NO_LABEL,
  type InFlightTask,
  type RoutingWorkerState,
  type TaskSpec,
  type WorkerInfo,
} from './types.js';

/** A worker as the router sees it (read-only view; the registry owns the record). */
export interface WorkerView {
  readonly id: string;
  readonly labelCapacity: number;
  readonly taskSlots: number;
  /** Loaded or loading labels, most recently used first. */
  readonly labels: readonly string[];
  /** Labels assumed loading: sent with a task, not yet confirmed by the worker. */
  readonly loading: ReadonlySet<string>;
  /** Router time each label was last used on this worker. */
  readonly lastUsed: ReadonlyMap<string, number>;
  /** Tasks sent and not yet reported, by task id. */
  readonly inFlight: ReadonlyMap<string, InFlightTask>;
  readonly state: RoutingWorkerState;
  /** Task types served; empty = any. */
  readonly taskTypes: ReadonlySet<string>;
  /** Task types it runs without a model (it said so in its Hello). */
  readonly labelFreeTypes: ReadonlySet<string>;
  /** Labels that failed to load here, with the router time until which they are avoided. */
  readonly failing: ReadonlyMap<string, number>;
  /** True after a `no_slot` answer: not given tasks until its next report. */
  readonly blocked: boolean;
  /** Memory for labels, bytes; Infinity = no budget (label count only). */
  readonly memoryBudgetBytes: number;
  /** Footprints this worker reported for its labels, bytes. */
  readonly footprints: ReadonlyMap<string, number>;
  /**
   * Router time each label's load started (while loading) or completed; -Infinity for labels the
   * worker announced, whose age is unknown.
   */
  readonly loadedAt: ReadonlyMap<string, number>;
}

/** Where a worker currently sits in the indices, so a re-index only touches what changed. */
interface IndexState {
  available: boolean;
  holderOf: string[];
  slots: number;
  bucket: number;
  inHeap: boolean;
  inValueHeap: boolean;
}

/** The mutable record behind a {@link WorkerView}. */
export interface WorkerRecord extends WorkerView {
  labels: string[];
  loading: Set<string>;
  lastUsed: Map<string, number>;
  inFlight: Map<string, InFlightTask>;
  inFlightByLabel: Map<string, number>;
  /** Evictions sent with in-flight tasks (label -> count): the worker may still report them loaded. */
  pendingEvictions: Map<string, number>;
  state: RoutingWorkerState;
  failing: Map<string, number>;
  blocked: boolean;
  footprints: Map<string, number>;
  loadedAt: Map<string, number>;
  readonly ix: IndexState;
}

/** Options of {@link Registry}. */
export interface RegistryOptions {
  /** Footprint of a label a worker has not reported, bytes. Default 0 for every label. */
  footprintOf?: (label: string) => number;
}

function addTo<T>(map: Map<string, IndexedSet<T>>, key: string, item: T): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new IndexedSet()));
  set.add(item);
}

function removeFrom<T>(map: Map<string, IndexedSet<T>>, key: string, item: T): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(item);
  if (set.size === 0) map.delete(key);
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

/**
 * The live picture of the fleet: every worker's labels (most recent first), slots, in-flight tasks,
 * state, task types and failing labels, plus the indices that keep routing decisions O(1) or
 * O(log n) in workers and labels:
 *
 * - `available`: workers with a free slot that take tasks (ready, not blocked), with the order in
 *   which they became available;
 * - holders per label (ready workers that hold or are loading it) and their total slots, and the
 *   available subset of those holders;
 * - available workers with a free label slot, bucketed by how many labels they hold;
 * - available full workers in a heap keyed by the last use of their least recently used label.
 *
 * Mutations go through methods, which re-index the one worker they touch in O(capacity + log n).
 */
export class Registry {
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly inFlightTasks = new Map<string, InFlightTask>();
  private readonly availableSet = new IndexedSet<WorkerRecord>();
  /** Insertion order = the order in which workers became available. */
  private readonly availableOrder = new Map<WorkerRecord, true>();
  private readonly holders = new Map<string, IndexedSet<WorkerRecord>>();
  private readonly holderSlotCount = new Map<string, number>();
  private readonly availableHolderSets = new Map<string, IndexedSet<WorkerRecord>>();
  private readonly freeLabelSlotBuckets: IndexedSet<WorkerRecord>[] = [];
  private readonly fullHeap = new IndexedHeap<WorkerRecord>();
  private readonly valueHeap = new IndexedHeap<WorkerRecord>();
  private readonly footprintOf: (label: string) => number;
  /** See {@link Registry.setLabelValue}. */
  private labelValue: ((w: WorkerRecord, label: string) => number) | undefined;
  private readonly typeWorkers = new Map<string, number>();
  private readonly seenTypes = new Set<string>();
  /** Task type -> connected workers that serve it and announced it label-free. */
  private readonly labelFreeWorkers = new Map<string, number>();
  private anyTypeWorkers = 0;
  private readySlots = 0;
  private everJoined = false;

  constructor(options: RegistryOptions = {}) {
    this.footprintOf = options.footprintOf ?? (() => 0);
  }

  /**
   * Keys the "cheapest label" index ({@link Registry.byCheapestLabel}) by this value of a label on
   * a worker (lower = cheaper to lose). Keys are computed when a worker changes, so they may be
   * stale: callers re-evaluate the few candidates they take.
   */
  setLabelValue(value: (w: WorkerRecord, label: string) => number): void {
    this.labelValue = value;
    for (const w of this.workers.values()) this.sync(w);
  }

  /** Number of workers. */
  get size(): number {
    return this.workers.size;
  }

  /** Total task slots of ready workers. */
  get totalReadySlots(): number {
    return this.readySlots;
  }

  /** Number of workers with a free slot that take tasks. */
  get availableCount(): number {
    return this.availableSet.size;
  }

  get(id: string): WorkerRecord | undefined {
    return this.workers.get(id);
  }

  /** All workers, in join order. */
  values(): IterableIterator<WorkerRecord> {
    return this.workers.values();
  }

  /** The in-flight task with this id, wherever it runs. */
  inFlight(taskId: string): InFlightTask | undefined {
    return this.inFlightTasks.get(taskId);
  }

  /** Adds a worker; throws if the id is taken (the caller removes the old one first). */
  add(info: WorkerInfo, now: number): WorkerRecord {
    if (this.workers.has(info.id)) throw new Error(`worker ${info.id} is already registered`);
    const capacity = Math.max(1, Math.floor(info.labelCapacity) || 1);
    const labels = [...new Set(info.loadedLabels)].slice(0, capacity);
    const w: WorkerRecord = {
      id: info.id,
      labelCapacity: capacity,
      taskSlots: Math.max(1, Math.floor(info.taskSlots) || 1),
      labels,
      loading: new Set(),
      // Reported order is recency; spread the stamps so the LRU label has the oldest one.
      lastUsed: new Map(labels.map((l, i) => [l, now - i * 1e-3])),
      inFlight: new Map(),
      inFlightByLabel: new Map(),
      pendingEvictions: new Map(),
      state: info.state ?? 'ready',
      taskTypes: new Set(info.taskTypes),
      labelFreeTypes: new Set(info.labelFreeTaskTypes ?? []),
      failing: new Map(),
      blocked: false,
      memoryBudgetBytes:
        info.memoryBudgetBytes !== undefined && info.memoryBudgetBytes > 0
          ? info.memoryBudgetBytes
          : Infinity,
      footprints: new Map(),
      loadedAt: new Map(labels.map((l) => [l, -Infinity])),
      ix: { available: false, holderOf: [], slots: 0, bucket: -1, inHeap: false, inValueHeap: false },
    };
    this.workers.set(w.id, w);
    this.everJoined = true;
    if (w.taskTypes.size === 0) this.anyTypeWorkers++;
    for (const t of w.taskTypes) {
      bump(this.typeWorkers, t, 1);
      this.seenTypes.add(t);
    }
    for (const t of w.labelFreeTypes) if (this.serves(w, t)) bump(this.labelFreeWorkers, t, 1);
    this.sync(w);
    return w;
  }

  /** Removes a worker and returns its record (with the tasks it had in flight). */
  remove(id: string): WorkerRecord | undefined {
    const w = this.workers.get(id);
    if (!w) return undefined;
    this.unindex(w);
    this.workers.delete(id);
    for (const taskId of w.inFlight.keys()) this.inFlightTasks.delete(taskId);
    if (w.taskTypes.size === 0) this.anyTypeWorkers--;
    for (const t of w.taskTypes) bump(this.typeWorkers, t, -1);
    for (const t of w.labelFreeTypes) if (this.serves(w, t)) bump(this.labelFreeWorkers, t, -1);
    return w;
  }

  /**
   * Whether tasks of this type can run: `served` (a worker that serves it is connected),
   * `gone` (seen before, none connected now), `waiting` (no worker ever joined, so nothing is
   * known yet) or `unknown` (workers joined and none ever served it).
   */
  taskTypeStatus(taskType: string): 'served' | 'gone' | 'waiting' | 'unknown' {
    if (this.anyTypeWorkers > 0 || this.typeWorkers.has(taskType)) return 'served';
    if (this.seenTypes.has(taskType)) return 'gone';
    return this.everJoined ? 'unknown' : 'waiting';
  }

  /**
   * Whether tasks of this type are routed without a label: every connected worker serving it
   * announced it label-free (so one older worker that did not say keeps the type labelled).
   */
  isLabelFree(taskType: string): boolean {
    const free = this.labelFreeWorkers.get(taskType) ?? 0;
    return free > 0 && free === (this.typeWorkers.get(taskType) ?? 0) + this.anyTypeWorkers;
  }

  /** Whether `w` takes a task now. */
  isAvailable(w: WorkerView): boolean {
    return w.state === 'ready' && !w.blocked && w.inFlight.size < w.taskSlots;
  }

  /** Whether `w` runs tasks of this type. */
  serves(w: WorkerView, taskType: string): boolean {
    return w.taskTypes.size === 0 || w.taskTypes.has(taskType);
  }

  /** Whether `label` recently failed to load on `w` and is still backing off at `now`. */
  isFailing(w: WorkerView, label: string, now: number): boolean {
    const until = w.failing.get(label);
    return until !== undefined && until > now;
  }

  /** Whether `w` may take a task of this type on this label at `now` (ignoring slots). */
  canRun(w: WorkerView, task: TaskSpec, now: number): boolean {
    return this.mayTake(w, task) && !this.isFailing(w, task.label, now);
  }

  /** Whether `w` serves the task's type and is not one the task avoids (labels and slots aside). */
  mayTake(w: WorkerView, task: TaskSpec): boolean {
    return this.serves(w, task.taskType) && task.avoidWorkers?.has(w.id) !== true;
  }

  /** Number of ready workers holding (or loading) `label`. */
  holderCount(label: string): number {
    return this.holders.get(label)?.size ?? 0;
  }

  /** Total task slots of the ready workers holding `label`. */
  holderSlots(label: string): number {
    return this.holderSlotCount.get(label) ?? 0;
  }

  /** Ready workers holding (or loading) `label`, at most `limit`. */
  *holdersOf(label: string, limit = Infinity): Generator<WorkerRecord> {
    const set = this.holders.get(label);
    if (!set) return;
    let n = 0;
    for (const w of set) {
      if (n++ >= limit) return;
      yield w;
    }
  }

  /** Available workers holding `label`, starting at a random one, at most `limit`. */
  *availableHolders(label: string, random: () => number, limit = Infinity): Generator<WorkerRecord> {
    const set = this.availableHolderSets.get(label);
    if (set) yield* set.fromRandom(random, limit);
  }

  /** Available workers, starting at a random one, at most `limit`. */
  *available(random: () => number, limit = Infinity): Generator<WorkerRecord> {
    yield* this.availableSet.fromRandom(random, limit);
  }

  /** Available workers in the order they became available (longest-waiting first), at most `limit`. */
  *availableByWait(limit = Infinity): Generator<WorkerRecord> {
    let n = 0;
    for (const w of this.availableOrder.keys()) {
      if (n++ >= limit) return;
      yield w;
    }
  }

  /**
   * Available workers with a free label slot, fewest labels first (random within a count), at most
   * `limit` in all.
   */
  *withFreeLabelSlot(random: () => number, limit = Infinity): Generator<WorkerRecord> {
    let left = limit;
    for (const bucket of this.freeLabelSlotBuckets) {
      if (!bucket || bucket.size === 0) continue;
      for (const w of bucket.fromRandom(random, left)) {
        yield w;
        if (--left <= 0) return;
      }
    }
  }

  /**
   * Available workers whose labels fill their capacity, the one whose least recently used label
   * was used longest ago first, at most `limit`.
   */
  *fullByStalestLabel(limit = Infinity): Generator<WorkerRecord> {
    yield* this.fullHeap.ascending(limit);
  }

  /**
   * Available workers holding at least one label, the one whose cheapest label (by the value set
   * with {@link Registry.setLabelValue}, as of its last change) is cheapest first, at most `limit`.
   */
  *byCheapestLabel(limit = Infinity): Generator<WorkerRecord> {
    yield* this.valueHeap.ascending(limit);
  }

  /** Footprint of `label` on `w`, bytes: what it reported, else the fleet's estimate. */
  footprint(w: WorkerView, label: string): number {
    return w.footprints.get(label) ?? this.footprintOf(label);
  }

  /** Memory `w`'s labels take, bytes. O(labels on w). */
  usedBytes(w: WorkerView): number {
    let sum = 0;
    for (const l of w.labels) sum += this.footprint(w, l);
    return sum;
  }

  /** Whether `label` fits on `w` now without unloading anything (by count and by memory). */
  fits(w: WorkerView, label: string): boolean {
    if (w.labels.includes(label)) return true;
    if (w.labels.length >= w.labelCapacity) return false;
    return (
      w.memoryBudgetBytes === Infinity || this.usedBytes(w) + this.footprint(w, label) <= w.memoryBudgetBytes
    );
  }

  /** Whether an in-flight task on `w` uses `label` (so it must not be evicted). */
  inUse(w: WorkerRecord, label: string): boolean {
    return (w.inFlightByLabel.get(label) ?? 0) > 0;
  }

  /**
   * Records that `task` was sent to `w`, optimistically: `evictLabel` is gone, the task's label is
   * loaded or loading and most recent.
   */
  startTask(w: WorkerRecord, task: TaskSpec, evictLabel: string | undefined, now: number): InFlightTask {
    const labelFree = task.label === NO_LABEL;
    const expectMiss = !labelFree && !w.labels.includes(task.label);
    const entry: InFlightTask = { task, workerId: w.id, sentAt: now, evictLabel, expectMiss };
    w.inFlight.set(task.id, entry);
    this.inFlightTasks.set(task.id, entry);
    if (labelFree) {
      // Touches no label: nothing loads, nothing is evicted, recency stays as it was.
      this.sync(w);
      return entry;
    }
    bump(w.inFlightByLabel, task.label, 1);
    if (evictLabel !== undefined && evictLabel !== task.label) {
      this.dropLabel(w, evictLabel);
      bump(w.pendingEvictions, evictLabel, 1);
    }
    this.touch(w, task.label, now);
    if (expectMiss) {
      w.loading.add(task.label);
      w.loadedAt.set(task.label, now);
    }
    this.sync(w);
    return entry;
  }

  /** Records a `load` order to `w` (ahead of demand): the label is loading, least recently used. */
  startLoad(w: WorkerRecord, label: string, now: number): void {
    if (w.labels.includes(label)) return;
    w.labels.push(label);
    const oldest = w.labels.length > 1 ? (w.lastUsed.get(w.labels[w.labels.length - 2]!) ?? now) : now;
    w.lastUsed.set(label, Math.min(now, oldest - 1e-3));
    w.loading.add(label);
    w.loadedAt.set(label, now);
    this.sync(w);
  }

  /** Records an `unload` order to `w`: the label is gone until the worker says otherwise. */
  unloadLabel(w: WorkerRecord, label: string): void {
    if (!w.labels.includes(label)) return;
    this.dropLabel(w, label);
    bump(w.pendingEvictions, label, 1);
    this.sync(w);
  }

  /** Records that `w` reported on `taskId` (result or error): its slot is free again. */
  finishTask(w: WorkerRecord, taskId: string): InFlightTask | undefined {
    const entry = w.inFlight.get(taskId);
    if (!entry) return undefined;
    w.inFlight.delete(taskId);
    this.inFlightTasks.delete(taskId);
    if (entry.task.label !== NO_LABEL) bump(w.inFlightByLabel, entry.task.label, -1);
    // The worker handled the RunTask, eviction included, before it reported.
    if (entry.evictLabel !== undefined) bump(w.pendingEvictions, entry.evictLabel, -1);
    this.sync(w);
    return entry;
  }

  /**
   * Replaces the picture of `w`'s labels with what it reported (the truth), keeping what the
   * worker cannot have seen yet: labels of in-flight tasks stay (as loading) and labels evicted by
   * in-flight tasks stay gone.
   */
  applyLoadedLabels(w: WorkerRecord, reported: readonly string[], now: number): void {
    const next: string[] = [];
    for (const l of reported) {
      if (next.includes(l)) continue;
      if (w.pendingEvictions.has(l) && !this.inUse(w, l)) continue;
      next.push(l);
    }
    for (const l of w.loading) if (next.includes(l)) w.loading.delete(l);
    for (const l of w.inFlightByLabel.keys()) {
      if (!next.includes(l) && !this.isFailing(w, l, now)) {
        next.unshift(l);
        w.loading.add(l);
      }
    }
    for (const l of w.loading) if (!next.includes(l)) w.loading.delete(l);
    for (const l of next) if (!w.lastUsed.has(l)) w.lastUsed.set(l, now);
    for (const l of w.lastUsed.keys()) if (!next.includes(l)) w.lastUsed.delete(l);
    for (const l of next) if (!w.loadedAt.has(l)) w.loadedAt.set(l, now);
    for (const l of w.loadedAt.keys()) if (!next.includes(l)) w.loadedAt.delete(l);
    for (const l of w.footprints.keys()) if (!next.includes(l)) w.footprints.delete(l);
    // Recency follows the worker's order: nudge stamps so the list order and the stamps agree.
    for (let i = next.length - 2; i >= 0; i--) {
      const newer = w.lastUsed.get(next[i]!)!;
      const older = w.lastUsed.get(next[i + 1]!)!;
      if (newer <= older) w.lastUsed.set(next[i]!, older + 1e-3);
    }
    w.labels = next;
    this.sync(w);
  }

  /** A LabelEvent `loaded` confirmed `label` on `w`. */
  confirmLoaded(w: WorkerRecord, label: string, now: number, footprintBytes?: number): void {
    w.loading.delete(label);
    if (w.labels.includes(label)) w.loadedAt.set(label, now);
    if (footprintBytes !== undefined && footprintBytes > 0) w.footprints.set(label, footprintBytes);
    this.sync(w);
  }

  /** A LabelEvent `evicted`: the pending eviction of `label` (if any) is done. */
  confirmEvicted(w: WorkerRecord, label: string): void {
    w.pendingEvictions.delete(label);
  }

  /** Avoid loading `label` on `w` until `until` (router time), and forget it is there. */
  markFailing(w: WorkerRecord, label: string, until: number): void {
    w.failing.set(label, until);
    this.dropLabel(w, label);
    this.sync(w);
  }

  /** Drops back-offs that ended before `now` (keeps the maps small). */
  expireFailures(w: WorkerRecord, now: number): void {
    for (const [label, until] of w.failing) if (until <= now) w.failing.delete(label);
  }

  /** Sets `w` ready or draining. */
  setState(w: WorkerRecord, state: RoutingWorkerState): void {
    if (w.state === state) return;
    w.state = state;
    this.sync(w);
  }

  /** Blocks `w` (it said `no_slot`) or unblocks it (it reported again). */
  setBlocked(w: WorkerRecord, blocked: boolean): void {
    if (w.blocked === blocked) return;
    w.blocked = blocked;
    this.sync(w);
  }

  private touch(w: WorkerRecord, label: string, now: number): void {
    const i = w.labels.indexOf(label);
    if (i >= 0) w.labels.splice(i, 1);
    w.labels.unshift(label);
    const newest = w.labels.length > 1 ? (w.lastUsed.get(w.labels[1]!) ?? now) : now;
    w.lastUsed.set(label, Math.max(now, newest + 1e-3));
  }

  private dropLabel(w: WorkerRecord, label: string): void {
    const i = w.labels.indexOf(label);
    if (i >= 0) w.labels.splice(i, 1);
    w.loading.delete(label);
    w.lastUsed.delete(label);
    w.loadedAt.delete(label);
    w.footprints.delete(label);
  }

  /** Takes `w` out of every index; `keepOrder` leaves its place in the availability order. */
  private unindex(w: WorkerRecord, keepOrder = false): void {
    const ix = w.ix;
    for (const l of ix.holderOf) {
      removeFrom(this.holders, l, w);
      bump(this.holderSlotCount, l, -ix.slots);
      if (ix.available) removeFrom(this.availableHolderSets, l, w);
    }
    this.readySlots -= ix.slots;
    ix.holderOf = [];
    ix.slots = 0;
    if (ix.bucket >= 0) this.freeLabelSlotBuckets[ix.bucket]!.delete(w);
    ix.bucket = -1;
    if (ix.inHeap) this.fullHeap.delete(w);
    ix.inHeap = false;
    if (ix.inValueHeap) this.valueHeap.delete(w);
    ix.inValueHeap = false;
    if (ix.available) {
      this.availableSet.delete(w);
      if (!keepOrder) this.availableOrder.delete(w);
    }
    ix.available = false;
  }

  /** Re-indexes one worker after any change to it: O(capacity + log n). */
  private sync(w: WorkerRecord): void {
    const ix = w.ix;
    const available = this.isAvailable(w);
    // A worker that stays available keeps its place in the "longest waiting" order.
    const keepOrder = ix.available && available;
    this.unindex(w, keepOrder);
    ix.available = available;
    if (available) {
      this.availableSet.add(w);
      if (!keepOrder) this.availableOrder.set(w, true);
    }
    if (w.state === 'ready') {
      ix.slots = w.taskSlots;
      this.readySlots += w.taskSlots;
      ix.holderOf = [...w.labels];
      for (const l of w.labels) {
        addTo(this.holders, l, w);
        bump(this.holderSlotCount, l, w.taskSlots);
        if (available) addTo(this.availableHolderSets, l, w);
      }
    }
    if (!available) return;
    if (this.labelValue && w.labels.length > 0) {
      let cheapest = Infinity;
      for (const l of w.labels) cheapest = Math.min(cheapest, this.labelValue(w, l));
      this.valueHeap.set(w, cheapest, w.id);
      ix.inValueHeap = true;
    }
    if (w.labels.length < w.labelCapacity) {
      const n = w.labels.length;
      while (this.freeLabelSlotBuckets.length <= n) this.freeLabelSlotBuckets.push(new IndexedSet());
      this.freeLabelSlotBuckets[n]!.add(w);
      ix.bucket = n;
    } else {
      const lru = w.labels[w.labels.length - 1]!;
      this.fullHeap.set(w, w.lastUsed.get(lru) ?? -Infinity, w.id);
      ix.inHeap = true;
    }
  }
}
