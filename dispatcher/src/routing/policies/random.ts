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
 * `random`: label-blind. A task goes to a uniformly random worker with a free slot, else waits in
 * one FIFO queue that any worker takes from when a slot frees. A worker lacking the label evicts
 * its least recently used one (the dispatcher names it in the RunTask).
 */
export const randomPolicy: RoutingPolicy = {
  name: 'random',
  queueFor: () => COMMON_QUEUE,
  place(task: TaskSpec, ctx: PolicyContext, now: number): Placement | undefined {
    for (const worker of ctx.registry.available(ctx.random, ctx.scanLimit)) {
      if (!ctx.registry.canRun(worker, task, now)) continue;
      const evictLabel = evictionFor(worker, task.label, ctx.registry);
      if (evictLabel !== null) return { worker, evictLabel };
    }
    return undefined;
  },
  pick: (w, ctx, now) => pickOldest(w, ctx, now),
};
