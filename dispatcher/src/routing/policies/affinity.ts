import { rentPaid, victimsFor, type Victims } from '../eviction.js';
import type { QueuedTask } from '../queues.js';
import type { Pick, Placement, PolicyContext, RoutingPolicy } from '../policy.js';
import { prewarmFor, surplusCopies } from '../replicas.js';
import type { WorkerRecord } from '../registry.js';
import type { TaskSpec } from '../types.js';

/**
 * `affinity` (default): cost-aware label affinity. Tasks wait in their label's FIFO queue.
 *
 * On arrival (or retry) of a task for label L:
 * 1. an available worker holding L takes it (random among them);
 * 2. else, if workers that serve the task hold L but all are busy (or still loading it), it waits
 *    while the expected wait
 *      remaining load of the soonest holder + runMs(L) x (tasks of L queued + 1) / slots of L's holders
 *    is below loadMs(L), both learned (EWMA of measured run and load times);
 * 3. else an available worker loads L: one with room (a free label slot and, under a memory budget,
 *    enough memory; fewest labels first), else the one whose eviction costs least by value
 *    (eviction.ts: aged request rate x load time / copies / size; never a label in use, the only
 *    copy of a label with queued work, or a label within its minimum residency); a load that
 *    evicts waits until the rent is paid: the tasks of L have waited, in total, as long as the
 *    eviction is expected to make others wait (eviction.ts `rentPaid`), so tasks gather per load;
 * 4. else it waits.
 *
 * When a worker frees a slot it serves the queues of the labels it holds, smallest fair-queueing tag
 * first (arrival order with one tenant), else the first waiting task that is not waiting by choice
 * for a busy holder (loading its label under step 3's rule). Aging: if the oldest waiting task has
 * waited STARVATION_LOAD_MULTIPLE x loadMs(its label), it goes first, so a label no worker holds
 * cannot starve while every worker stays busy with its own labels' queues. On a tick, a waiting task
 * whose expected wait has reached loadMs(L) (or whose label lost all holders) is placed by step 3.
 * A worker with a free slot and nothing to take loads the hottest label below its replica target
 * (replicas.ts), ahead of demand, or else unloads its idle copies beyond their labels' targets.
 */
export const affinityPolicy: RoutingPolicy = {
  name: 'affinity',
  queueFor: (task) => task.label,

  place(task: TaskSpec, ctx: PolicyContext, now: number, waitedMs?: number): Placement | undefined {
    const { registry, costs } = ctx;
    const label = task.label;
    for (const worker of registry.availableHolders(label, ctx.random, ctx.scanLimit)) {
      if (registry.mayTake(worker, task)) return { worker, evictLabel: undefined };
    }
    const wait = expectedWaitMs(task, ctx, now, waitedMs === undefined ? 1 : 0);
    if (wait !== undefined) {
      const loadMs = costs.loadMs(label);
      // A holder (busy, or still loading the label) is expected sooner than a new copy. On a tick,
      // an estimate that keeps failing (a holder slower than learned) yields after two loads.
      if (wait.ms < loadMs && (waitedMs === undefined || waitedMs < 2 * loadMs)) return undefined;
    }
    const load = placeLoad(
      task,
      ctx,
      now,
      waitedMs !== undefined && waitedMs >= RESIDENT_WAIT_LOADS * costs.loadMs(label),
    );
    if (!load || !rentPaid(ctx, label, load.v, now)) return undefined;
    return { worker: load.worker, evictLabel: load.v.labels[0], alsoEvict: load.v.labels.slice(1) };
  },

  pick(w: WorkerRecord, ctx: PolicyContext, now: number): Pick | undefined {
    const starving = starvingTask(w, ctx, now);
    if (starving) return starving;
    let best: QueuedTask | undefined;
    for (const label of w.labels) {
      const head = ctx.queues.headOf(label);
      if (head && ctx.registry.mayTake(w, head.task) && (!best || earlier(head, best))) best = head;
    }
    if (best) return { queued: best, evictLabel: undefined };
    return pickToLoad(w, ctx, now);
  },

  // Only when nothing waits: prewarming is for idle capacity.
  prewarm: (w, ctx, now) => (ctx.queues.size === 0 ? prewarmFor(w, ctx, now) : undefined),

  // Only when nothing waits, like prewarming: a queued task may still want the copy.
  release: (w, ctx, now) => (ctx.queues.size === 0 ? surplusCopies(w, ctx, now) : []),

  evictionKey(ctx: PolicyContext, w: WorkerRecord, label: string): number {
    // The log of eviction.ts's value, with the time-independent demand score in place of the rate.
    const copies = Math.max(1, ctx.registry.holderCount(label));
    const size =
      w.memoryBudgetBytes === Infinity
        ? 1
        : Math.max(1e-6, ctx.registry.footprint(w, label) / w.memoryBudgetBytes);
    return (
      ctx.demand.score(label) + Math.log(ctx.costs.loadMs(label) + 1) - Math.log(copies) - Math.log(size)
    );
  },
};

/**
 * Workers whose evictions are priced exactly per load: the cheapest by the registry's (possibly
 * stale) index. Small, since pricing a worker is O(its labels).
 */
const EVICTION_CANDIDATES = 4;

/** After waiting this many of its label's load times, a task may evict a resident label. */
export const RESIDENT_WAIT_LOADS = 2;

/** How many of its label's load times the oldest waiting task may wait before it goes first. */
export const STARVATION_LOAD_MULTIPLE = 4;

/** Between queue heads: higher priority first, then fair-queueing tag, then age. */
function earlier(a: QueuedTask, b: QueuedTask): boolean {
  const pa = a.task.priority ?? 0;
  const pb = b.task.priority ?? 0;
  if (pa !== pb) return pa > pb;
  return a.tag < b.tag || (a.tag === b.tag && a.order < b.order);
}

function asPick(queued: QueuedTask, v: Victims): Pick {
  return { queued, evictLabel: v.labels[0], alsoEvict: v.labels.slice(1) };
}

/**
 * The oldest waiting task, when it has waited long enough to go before `w`'s own labels. With
 * several tenants, the starving task with the smallest fair-queueing tag among the first
 * `scanLimit`: aging overrides label affinity, not fairness (else a backlog that waited past the
 * threshold would be served in arrival order and one tenant's burst would starve the others).
 */
function starvingTask(w: WorkerRecord, ctx: PolicyContext, now: number): Pick | undefined {
  const oldest = ctx.fairShare.tenantCount > 1 ? fairestStarving(ctx, now) : ctx.queues.oldest();
  if (!oldest || w.labels.includes(oldest.task.label)) return undefined;
  if (now - oldest.enqueuedAt < STARVATION_LOAD_MULTIPLE * ctx.costs.loadMs(oldest.task.label))
    return undefined;
  if (!ctx.registry.canRun(w, oldest.task, now)) return undefined;
  // No sole-copy or residency protection here: those rules would let a well-served label starve this one.
  const v = victimsFor(ctx, w, oldest.task.label, now, false);
  return v === null ? undefined : asPick(oldest, v);
}

/** Among the first `scanLimit` waiting tasks, the one past its starvation age with the smallest tag. */
function fairestStarving(ctx: PolicyContext, now: number): QueuedTask | undefined {
  let best: QueuedTask | undefined;
  for (const queued of ctx.queues.inOrder(ctx.scanLimit)) {
    if (now - queued.enqueuedAt < STARVATION_LOAD_MULTIPLE * ctx.costs.loadMs(queued.task.label)) continue;
    if (!best || earlier(queued, best)) best = queued;
  }
  return best;
}

/**
 * Expected wait for a capable holder of the task's label (ms), or undefined when no ready worker
 * that serves the task holds it. `extra` counts the task itself when it is not queued yet.
 */
function expectedWaitMs(
  task: TaskSpec,
  ctx: PolicyContext,
  now: number,
  extra: number,
): { ms: number } | undefined {
  const { registry, costs, queues } = ctx;
  const label = task.label;
  let remainingLoad = Infinity;
  for (const w of registry.holdersOf(label, ctx.scanLimit)) {
    if (!registry.mayTake(w, task)) continue;
    const left = w.loading.has(label)
      ? Math.max(0, (w.loadedAt.get(label) ?? now) + costs.loadMs(label) - now)
      : 0;
    remainingLoad = Math.min(remainingLoad, left);
    if (remainingLoad === 0) break;
  }
  if (remainingLoad === Infinity) return undefined;
  const queued = queues.countForLabel(label) + extra;
  const ms = remainingLoad + (costs.runMs(label) * queued) / Math.max(1, registry.holderSlots(label));
  return { ms };
}

/**
 * For a worker with nothing of its own to serve: the earliest (by tag) of the first `scanLimit`
 * waiting tasks that it can load, skipping tasks that wait by choice for a busy holder or whose
 * label's rent is not paid yet. (So fair
 * queueing between tenants acts within that window of the oldest waiting tasks.)
 */
function pickToLoad(w: WorkerRecord, ctx: PolicyContext, now: number): Pick | undefined {
  let best: { queued: QueuedTask; v: Victims } | undefined;
  // One tenant: tags follow arrival, so the first candidate is the earliest. Several: the whole
  // window, for the smallest tag.
  const lookahead = ctx.fairShare.tenantCount > 1 ? Infinity : 0;
  let examined = 0;
  for (const queued of ctx.queues.inOrder(ctx.scanLimit)) {
    if (best && ++examined > lookahead) break;
    if (best && !earlier(queued, best.queued)) continue;
    if (!ctx.registry.canRun(w, queued.task, now)) continue;
    const wait = expectedWaitMs(queued.task, ctx, now, 0);
    if (wait !== undefined && wait.ms < ctx.costs.loadMs(queued.task.label)) continue;
    const waited = now - queued.enqueuedAt;
    const v = victimsFor(
      ctx,
      w,
      queued.task.label,
      now,
      true,
      waited >= RESIDENT_WAIT_LOADS * ctx.costs.loadMs(queued.task.label),
    );
    if (v !== null && rentPaid(ctx, queued.task.label, v, now)) best = { queued, v };
  }
  return best && asPick(best.queued, best.v);
}

/** Last use of the first victim (-Infinity when nothing is evicted). */
function staleness(w: WorkerRecord, v: Victims): number {
  const first = v.labels[0];
  return first === undefined ? -Infinity : (w.lastUsed.get(first) ?? -Infinity);
}

const NO_VICTIMS: Victims = Object.freeze({ labels: [], cost: 0, loss: 0 });

/** Step 3: an available worker that can load the task's label, and what it unloads. */
function placeLoad(
  task: TaskSpec,
  ctx: PolicyContext,
  now: number,
  residentMayGo = false,
): { worker: WorkerRecord; v: Victims } | undefined {
  const { registry } = ctx;
  const tight: WorkerRecord[] = [];
  for (const worker of registry.withFreeLabelSlot(ctx.random, ctx.scanLimit)) {
    if (!registry.canRun(worker, task, now)) continue;
    if (registry.fits(worker, task.label)) return { worker, v: NO_VICTIMS };
    tight.push(worker); // a free label slot but not enough memory
  }
  let best: { worker: WorkerRecord; v: Victims } | undefined;
  const consider = (worker: WorkerRecord): void => {
    if (!registry.canRun(worker, task, now)) return;
    const v = victimsFor(ctx, worker, task.label, now, true, residentMayGo);
    if (v === null) return;
    // Equal costs (e.g. no demand seen yet): the victim used longest ago, as under LRU.
    if (
      !best ||
      v.cost < best.v.cost ||
      (v.cost === best.v.cost && staleness(worker, v) < staleness(best.worker, best.v))
    )
      best = { worker, v };
  };
  for (const worker of tight) consider(worker);
  for (const worker of registry.byCheapestLabel(EVICTION_CANDIDATES)) consider(worker);
  return best;
}
