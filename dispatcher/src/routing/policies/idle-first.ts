import { COMMON_QUEUE } from '../queues.js';
import {
  evictionFor,
  pickOldest,
  type Placement,
  type PolicyContext,
  type RoutingPolicy,
} from '../policy.js';
import type { TaskSpec } from '../types.js';

/**
 * `idle-first`: the original Go project's rule, kept as a baseline.
 *
 * 1. An idle worker (free slot) holding the label, picked at random.
 * 2. Else the idle worker with the fewest labels that has a free label slot (random among ties).
 * 3. Else the common FIFO queue, taken by whichever worker frees first, which loads the label by
 *    evicting its least recently used one. An idle worker is already free, so while one exists it
 *    takes the task at once: the one that has waited longest, as a blocked consumer would.
 */
export const idleFirstPolicy: RoutingPolicy = {
  name: 'idle-first',
  queueFor: () => COMMON_QUEUE,
  place(task: TaskSpec, ctx: PolicyContext, now: number): Placement | undefined {
    const { registry } = ctx;
    for (const worker of registry.availableHolders(task.label, ctx.random, ctx.scanLimit)) {
      if (registry.mayTake(worker, task)) return { worker, evictLabel: undefined };
    }
    for (const worker of registry.withFreeLabelSlot(ctx.random, ctx.scanLimit)) {
      if (registry.canRun(worker, task, now)) return { worker, evictLabel: undefined };
    }
    for (const worker of registry.availableByWait(ctx.scanLimit)) {
      if (!registry.canRun(worker, task, now)) continue;
      const evictLabel = evictionFor(worker, task.label, registry);
      if (evictLabel !== null) return { worker, evictLabel };
    }
    return undefined;
  },
  pick: (w, ctx, now) => pickOldest(w, ctx, now),
};
