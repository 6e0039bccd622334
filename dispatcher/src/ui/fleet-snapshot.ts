import type { DispatcherMetrics } from '../metrics.js';
import { COMMON_QUEUE } from '../routing/queues.js';
import type { Router } from '../routing/router.js';
import type { FleetSeries } from './fleet-feed.js';

/** A label on a worker: confirmed loaded (`held`) or sent with a task and not yet confirmed (`loading`). */
export interface SnapshotLabel {
  readonly label: string;
  readonly status: 'held' | 'loading';
}

/** One worker in the live view. */
export interface SnapshotWorker {
  readonly id: string;
  readonly state: 'ready' | 'draining';
  /** Refused a task with no_slot and is not given tasks until its next report. */
  readonly blocked: boolean;
  readonly inFlight: number;
  readonly slots: number;
  readonly labelCapacity: number;
  /** Most recently used first. */
  readonly labels: SnapshotLabel[];
}

/** One queue: a label's, or the common one (`*`). */
export interface SnapshotQueue {
  readonly label: string;
  readonly depth: number;
  /** How long its oldest task has waited, ms. */
  readonly oldestWaitMs: number;
}

/** What the live view shows at one moment, taken from the router and the metrics. */
export interface FleetSnapshot {
  /** Unix time, ms. */
  readonly at: number;
  readonly policy: string;
  readonly workers: SnapshotWorker[];
  /** Every label held, loading or queued, sorted (the grid's columns). */
  readonly labels: string[];
  /** Non-empty queues, deepest first. */
  readonly queues: SnapshotQueue[];
  readonly queued: number;
  readonly inFlight: number;
  /** Since the dispatcher started (metrics counters). */
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses); null before the first task. */
  readonly hitRate: number | null;
  readonly loads: number;
  readonly evictions: number;
  readonly retries: number;
  readonly series: FleetSeries;
}

async function counterValue(counter: DispatcherMetrics['labelHits']): Promise<number> {
  const metric = await counter.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

/**
 * Reads the live view's picture from the dispatcher's own state. O(workers x label capacity +
 * queues); `routerNow` is the router's clock (performance.now()), for the queues' waits.
 */
export async function takeFleetSnapshot(
  router: Router,
  metrics: DispatcherMetrics,
  series: FleetSeries,
  routerNow: number = performance.now(),
): Promise<FleetSnapshot> {
  const workers: SnapshotWorker[] = [];
  const labels = new Set<string>();
  let inFlight = 0;
  for (const w of router.workers()) {
    inFlight += w.inFlight.size;
    for (const label of w.labels) labels.add(label);
    workers.push({
      id: w.id,
      state: w.state,
      blocked: w.blocked,
      inFlight: w.inFlight.size,
      slots: w.taskSlots,
      labelCapacity: w.labelCapacity,
      labels: w.labels.map((label) => ({ label, status: w.loading.has(label) ? 'loading' : 'held' })),
    });
  }
  workers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const queues: SnapshotQueue[] = [];
  for (const [label, depth] of router.queueDepths()) {
    if (depth === 0) continue;
    if (label !== COMMON_QUEUE) labels.add(label);
    const head = router.queues.headOf(label);
    queues.push({
      label,
      depth,
      oldestWaitMs: head ? Math.max(0, Math.round(routerNow - head.enqueuedAt)) : 0,
    });
  }
  queues.sort((a, b) => b.depth - a.depth || (a.label < b.label ? -1 : 1));
  const [hits, misses, loads, evictions, retries] = await Promise.all(
    [
      metrics.labelHits,
      metrics.labelMisses,
      metrics.labelLoads,
      metrics.labelEvictions,
      metrics.taskRetries,
    ].map(counterValue),
  );
  return {
    at: Date.now(),
    policy: router.policy.name,
    workers,
    labels: [...labels].sort(),
    queues,
    queued: router.queuedCount,
    inFlight,
    hits: hits!,
    misses: misses!,
    hitRate: hits! + misses! > 0 ? hits! / (hits! + misses!) : null,
    loads: loads!,
    evictions: evictions!,
    retries: retries!,
    series,
  };
}
