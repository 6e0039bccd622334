import type { QueuedTask } from '../queues.js';
import {
  evictionFor,
  pickOldest,
  type Pick,
  type Placement,
  type PolicyContext,
  type RoutingPolicy,
} from '../policy.js';
import type { WorkerRecord } from '../registry.js';
import type { TaskSpec } from '../types.js';

/**
 * `affinity` (default): cost-aware label affinity. Tasks wait in their label's FIFO queue.
 *
 * On arrival (or retry) of a task for label L:
 * 1. an available worker holding L takes it (random among them);
 * 2. else, if workers that serve the task hold L but all are busy, it waits while
 *      expected wait = runMs(L) x (tasks of L queued + 1) / slots of L's holders
 *    is below loadMs(L), both learned (EWMA of measured run and load times);
 * 3. else an available worker loads L: one with a free label slot (fewest labels first), else the
 *    one whose least recently used label was used longest ago, evicting that label; never a label
 *    in use, never the only copy of a label with queued work;
 * 4. else it waits.
 *
 * When a worker frees a slot it serves the queues of the labels it holds, oldest head first, else
 * the oldest waiting task overall (loading its label under the rule of step 3). Aging: if the oldest
 * waiting task has waited STARVATION_LOAD_MULTIPLE x loadMs(its label), it goes first, so a label no
 * worker holds cannot starve while every worker stays busy with its own labels' queues.
 * On a tick, a waiting task whose wait has reached loadMs(L) (or whose label lost all holders) is
 * placed by step 3 if an available worker can load it.
 */
export const affinityPolicy: RoutingPolicy = {
  name: 'affinity',
  queueFor: (task) => task.label,

  place(task: TaskSpec, ctx: PolicyContext, now: number, waitedMs?: number): Placement | undefined {
    const { registry, costs, queues } = ctx;
    const label = task.label;
    for (const worker of registry.availableHolders(label, ctx.random, ctx.scanLimit)) {
      if (registry.serves(worker, task.taskType)) return { worker, evictLabel: undefined };
    }
    if (hasCapableHolder(task, ctx)) {
      const loadMs = costs.loadMs(label);
      if (waitedMs === undefined) {
        const expectedWait =
          (costs.runMs(label) * (queues.countForLabel(label) + 1)) / Math.max(1, registry.holderSlots(label));
        if (expectedWait < loadMs) return undefined;
      } else if (waitedMs < loadMs) {
        return undefined;
      }
    }
    return placeLoad(task, ctx, now);
  },

  pick(w: WorkerRecord, ctx: PolicyContext, now: number): Pick | undefined {
    const starving = starvingTask(w, ctx, now);
    if (starving) return starving;
    let best: QueuedTask | undefined;
    for (const label of w.labels) {
      const head = ctx.queues.headOf(label);
      if (head && ctx.registry.serves(w, head.task.taskType) && (!best || head.order < best.order))
        best = head;
    }
    if (best) return { queued: best, evictLabel: undefined };
    return pickOldest(w, ctx, now, soleCopyWithWork(ctx));
  },
};

/** How many of its label's load times the oldest waiting task may wait before it goes first. */
export const STARVATION_LOAD_MULTIPLE = 4;

/** The oldest waiting task, when it has waited long enough to go before `w`'s own labels. */
function starvingTask(w: WorkerRecord, ctx: PolicyContext, now: number): Pick | undefined {
  const oldest = ctx.queues.oldest();
  if (!oldest || w.labels.includes(oldest.task.label)) return undefined;
  if (now - oldest.enqueuedAt < STARVATION_LOAD_MULTIPLE * ctx.costs.loadMs(oldest.task.label))
    return undefined;
  if (!ctx.registry.canRun(w, oldest.task, now)) return undefined;
  // No sole-copy protection here: that rule would let a well-served label starve this one.
  const evictLabel = evictionFor(w, oldest.task.label, ctx.registry);
  return evictLabel === null ? undefined : { queued: oldest, evictLabel };
}

/** Whether some ready worker holding the label (busy or not) serves the task's type. */
function hasCapableHolder(task: TaskSpec, ctx: PolicyContext): boolean {
  for (const w of ctx.registry.holdersOf(task.label, ctx.scanLimit)) {
    if (ctx.registry.serves(w, task.taskType)) return true;
  }
  return false;
}

/** A label is protected from eviction when one ready worker holds it and tasks wait for it. */
function soleCopyWithWork(ctx: PolicyContext): (label: string) => boolean {
  return (label) => ctx.registry.holderCount(label) === 1 && ctx.queues.countForLabel(label) > 0;
}

/** Step 3: an available worker that can load the task's label, and what it evicts. */
function placeLoad(task: TaskSpec, ctx: PolicyContext, now: number): Placement | undefined {
  const { registry } = ctx;
  for (const worker of registry.withFreeLabelSlot(ctx.random, ctx.scanLimit)) {
    if (registry.canRun(worker, task, now)) return { worker, evictLabel: undefined };
  }
  const isProtected = soleCopyWithWork(ctx);
  for (const worker of registry.fullByStalestLabel(ctx.scanLimit)) {
    if (!registry.canRun(worker, task, now)) continue;
    const evictLabel = evictionFor(worker, task.label, registry, isProtected);
    if (evictLabel !== null) return { worker, evictLabel };
  }
  return undefined;
}
